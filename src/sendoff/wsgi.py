"""WSGI helpers: ``sendoff.wsgi.BackgroundMiddleware`` runs after-response tasks."""

from __future__ import annotations

from .background.wsgi import BackgroundMiddleware

__all__ = ["BackgroundMiddleware"]
