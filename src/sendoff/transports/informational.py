"""http.client skips ``100 Continue`` only: a 102 or 103 (Early Hints) would be taken for
the final response. This response class skips every informational response but 101,
for the stdlib and urllib3 backends (both read responses with http.client)."""

from __future__ import annotations

import http.client
from typing import Any


class FinalResponse(http.client.HTTPResponse):
    def _read_status(self) -> Any:
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if not 100 < status < 200 or status == 101:
                return version, status, reason  # http.client handles 100 itself
            while self.fp.readline(65537) not in (b"\r\n", b"\n", b""):
                pass  # the informational response's headers
