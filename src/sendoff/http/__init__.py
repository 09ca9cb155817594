"""The HTTP model: Request, Response, Headers, URL, forms and the current-request frame.

This package is data: it imports nothing of sendoff but the core.
"""

from .frame import Frame, current_frame
from .headers import Headers
from .models import (
    HttpError,
    PreparedRequest,
    Request,
    RequestClient,
    Response,
    RouteMatch,
)
from .url import URL, parse_uri

__all__ = [
    "URL",
    "Frame",
    "Headers",
    "HttpError",
    "PreparedRequest",
    "Request",
    "RequestClient",
    "Response",
    "RouteMatch",
    "current_frame",
    "parse_uri",
]
