"""Transports: how request bytes reach a server and the response comes back.

- :mod:`.tls`: verified TLS contexts;
- :mod:`.exchange`: the response side every transport shares;
- :mod:`.backend`: the External backends' interface and registry, with one module per
  backend (urllib3, pycurl, httpx, stdlib);
- :mod:`.wsgi` and :mod:`.asgi`: calling a WSGI or ASGI application in-process.
"""

from .backend import AUTO_ORDER, BACKENDS, Backend, BackendName, backend_class
from .exchange import CHUNK, Exchange
from .tls import ssl_context

__all__ = [
    "AUTO_ORDER",
    "BACKENDS",
    "CHUNK",
    "Backend",
    "BackendName",
    "Exchange",
    "backend_class",
    "ssl_context",
]
