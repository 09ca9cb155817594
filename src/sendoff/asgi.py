"""ASGI helpers: ``sendoff.asgi.BackgroundMiddleware`` runs after-response tasks."""

from __future__ import annotations

from .background.asgi import BackgroundMiddleware

__all__ = ["BackgroundMiddleware"]
