"""External backends, chosen by name or by availability ("auto")."""

from __future__ import annotations

import importlib

from .base import Backend, Exchange

#: name -> (module, class, the pip extra that installs it)
BACKENDS: dict[str, tuple[str, str, str]] = {
    "pycurl": ("pycurl_backend", "PycurlBackend", "pycurl"),
    "urllib3": ("urllib3_backend", "Urllib3Backend", "urllib3"),
    "httpx": ("httpx_backend", "HttpxBackend", "httpx"),
    "stdlib": ("stdlib_backend", "StdlibBackend", ""),
}

#: Kohana's "PECL HTTP, else cURL, else streams", in Python terms.
AUTO_ORDER = ("pycurl", "urllib3", "stdlib")


def backend_class(name: str) -> type[Backend]:
    """The Backend class called ``name``; ImportError if its library is missing."""
    if name == "auto":
        for candidate in AUTO_ORDER:
            try:
                return backend_class(candidate)
            except ImportError:
                continue
    if name not in BACKENDS:
        known = ", ".join(["auto", *BACKENDS])
        raise ValueError(f"unknown backend {name!r}; choose one of {known}")
    module, cls, extra = BACKENDS[name]
    try:
        mod = importlib.import_module(f"{__name__}.{module}")
    except ImportError as exc:
        hint = f"pip install 'sendoff[{extra}]'"
        raise ImportError(f"backend {name!r} needs {extra}: {hint}") from exc
    backend: type[Backend] = getattr(mod, cls)
    return backend


__all__ = ["AUTO_ORDER", "BACKENDS", "Backend", "Exchange", "backend_class"]
