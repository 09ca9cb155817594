"""The External backends' interface, and the registry that picks one by name or by
availability ("auto", Kohana's "PECL HTTP, else cURL, else streams")."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ..events.lifecycle import Transaction
    from ..http.models import PreparedRequest, Response

#: The names ``External(backend=...)`` accepts.
BackendName = Literal["auto", "urllib3", "pycurl", "httpx", "stdlib"]


class Backend(ABC):
    """One way of exchanging a prepared request (Kohana: PECL HTTP, cURL or streams)."""

    name: str = ""

    def __init__(self, *, verify: bool = True, ca_bundle: str | None = None) -> None:
        self.verify = verify
        self.ca_bundle = ca_bundle

    @abstractmethod
    def send(
        self, prepared: PreparedRequest, timeout: float, txn: Transaction | None
    ) -> Response:
        """Send ``prepared`` and read the whole response; raise a TransportError."""

    def close(self) -> None:  # noqa: B027 - optional for backends that pool nothing
        """Release pooled connections."""


#: name -> (module, class, the pip extra that installs it)
BACKENDS: dict[str, tuple[str, str, str]] = {
    "pycurl": ("pycurl_backend", "PycurlBackend", "pycurl"),
    "urllib3": ("urllib3_backend", "Urllib3Backend", "urllib3"),
    "httpx": ("httpx_backend", "HttpxBackend", "httpx"),
    "stdlib": ("stdlib_backend", "StdlibBackend", ""),
}

#: Kohana's "PECL HTTP, else cURL, else streams", in Python terms.
AUTO_ORDER = ("pycurl", "urllib3", "stdlib")


def backend_class(name: BackendName | str) -> type[Backend]:
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
        mod = importlib.import_module(f"{__package__}.{module}")
    except ImportError as exc:
        hint = f"pip install 'sendoff[{extra}]'"
        raise ImportError(f"backend {name!r} needs {extra}: {hint}") from exc
    backend: type[Backend] = getattr(mod, cls)
    return backend

