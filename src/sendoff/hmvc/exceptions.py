"""The HMVC exceptions: HTTP exceptions a controller raises to answer with a status
(Kohana's HTTP_Exception), and the bound on nested sub-requests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.errors import SendoffError
from ..http.headers import Headers, HeadersInput
from ..http.models import Response, reason_phrase

if TYPE_CHECKING:
    from ..http.models import Request


class HTTPException(SendoffError):
    """Raise it in a controller to answer with ``status``::

        raise HTTPException(403, "members only")

    The App turns it into :meth:`get_response`: the status, the headers given, and the
    message (or the reason phrase) as a plain-text body. Override :meth:`get_response`
    in a subclass for a page of your own, as with Kohana's ``HTTP_Exception_404``.
    """

    def __init__(self, status: int, message: str = "", *, headers: HeadersInput = None) -> None:
        if not 300 <= int(status) <= 599:
            raise ValueError(f"an HTTP exception needs a 3xx, 4xx or 5xx status, not {status}")
        self.status = int(status)
        self.message = message
        self.headers = Headers(headers)
        super().__init__(f"{self.status} {reason_phrase(self.status)}: {message}".rstrip(": "))

    def get_response(self, request: Request[Any] | None = None) -> Response:
        """The response the App sends for this exception."""
        body = self.message or f"{self.status} {reason_phrase(self.status)}"
        response = Response(self.status, self.headers.copy(), body, request=request)
        if "content-type" not in response.headers:
            response.headers["Content-Type"] = "text/plain; charset=utf-8"
        return response


class Redirect(HTTPException):
    """A redirect to ``location`` (Kohana's ``HTTP_Exception_Redirect``); see
    :meth:`Controller.redirect`."""

    def __init__(self, location: str, status: int = 302) -> None:
        if not 300 <= int(status) <= 399:
            raise ValueError(f"a redirect needs a 3xx status, not {status}")
        super().__init__(status, "", headers={"Location": location})
        self.location = location

    def get_response(self, request: Request[Any] | None = None) -> Response:
        return Response(self.status, self.headers.copy(), b"", request=request)


class RecursionLimit(SendoffError, RecursionError):
    """Sub-requests nested deeper than the App allows (a controller calling itself?)."""
