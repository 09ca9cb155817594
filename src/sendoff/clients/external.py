"""The blocking External client (Kohana's Request_Client_External)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.errors import InvalidRequest
from ..http.models import Response
from ..subscribers.redirect import Redirect
from ..transports.backend import BackendName, backend_class
from .base import Client

if TYPE_CHECKING:
    from ..events.lifecycle import Transaction
    from ..http.models import Request


class External(Client[Response]):
    """Executes external requests over the network and returns the Response.

    ``backend`` is ``"urllib3"``, ``"pycurl"``, ``"httpx"``, ``"stdlib"`` or ``"auto"``
    (the first importable of pycurl, urllib3, stdlib). TLS is verified unless
    ``verify=False``; ``ca_bundle`` names a PEM file of trusted CAs. ``timeout`` bounds
    the connect and each wait for data. With ``follow_redirects`` the
    :class:`~sendoff.subscribers.Redirect` subscriber is attached.
    """

    def __init__(
        self,
        backend: BackendName = "auto",
        timeout: float = 30.0,
        verify: bool = True,
        follow_redirects: bool = False,
        max_redirects: int = 5,
        *,
        ca_bundle: str | None = None,
    ) -> None:
        super().__init__(timeout=timeout)
        self.verify = verify
        self.ca_bundle = ca_bundle
        self.backend = backend_class(backend)(verify=verify, ca_bundle=ca_bundle)
        if follow_redirects:
            self.emitter.attach(Redirect(max_redirects))

    def __repr__(self) -> str:
        return f"<External backend={self.backend.name} timeout={self.timeout}>"

    def transfer(self, request: Request[Any], transaction: Transaction | None) -> Response:
        if not request.is_external():
            raise InvalidRequest("uri", f"{request.uri()!r} is internal; External sends URLs")
        timeout = request.timeout() or self.timeout
        response = self.backend.send(request.prepare(), timeout, transaction)
        response.request = request
        return response

    def close(self) -> None:
        """Close pooled connections."""
        self.backend.close()
