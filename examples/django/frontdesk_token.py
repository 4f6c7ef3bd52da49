"""Signed visitor tokens for frontdesk, in plain Python (no Django needed).

A token is  <expires_unix>.<hex HMAC-SHA256(token_secret, "<visitor_id>_<site_id>|<expires_unix>")>
and goes into the widget's `token` option; frontdesk checks it when the visitor joins.
The same test vectors as frontdesk's own code check this (tests/token_vectors.json).
"""

from __future__ import annotations

import hashlib
import hmac
import time


def mint_token(secret: str | bytes, site: str, visitor: str, *, ttl: int = 86400,
               expires: int | None = None) -> str:
    """A token for `visitor` on `site`, valid for `ttl` seconds (or until `expires`)."""
    key = secret.encode() if isinstance(secret, str) else secret
    exp = int(expires if expires is not None else time.time() + ttl)
    mac = hmac.new(key, f"{visitor}_{site}|{exp}".encode(), hashlib.sha256).hexdigest()
    return f"{exp}.{mac}"
