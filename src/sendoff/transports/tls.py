"""TLS settings shared by the backends: verified by default, optional CA bundle."""

from __future__ import annotations

import ssl
from functools import lru_cache


@lru_cache(maxsize=16)
def ssl_context(verify: bool = True, ca_bundle: str | None = None) -> ssl.SSLContext:
    """A client SSLContext: the system CAs (or ``ca_bundle``), hostname checked.

    ``verify=False`` turns both checks off; it is never the default.
    """
    ctx = ssl.create_default_context(cafile=ca_bundle)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
