"""The HTTP model: Request, Response, Headers, URL and their wire form."""

from .headers import Headers
from .request import PreparedRequest, Request
from .response import Response
from .url import URL, parse_uri

__all__ = ["URL", "Headers", "PreparedRequest", "Request", "Response", "parse_uri"]
