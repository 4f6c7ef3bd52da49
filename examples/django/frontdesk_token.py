"""Signed visitor tokens for frontdesk, in plain Python (no Django needed).

A token is  <expires_unix>.<hex HMAC-SHA256(token_secret, "<visitor_id>_<site_id>|<expires_unix>")>
and goes into the widget's `token` option; frontdesk checks it when the visitor joins.

It may also carry what the web app knows of its visitor (name, email, its own user id), which
staff then see with the chat, marked as signed:
  <expires_unix>.<details>.<hex HMAC-SHA256(token_secret, "<visitor>_<site>|<expires>|<details>")>
where <details> is unpadded base64url of a compact JSON object with the keys name, email and
user_id (in that order, each optional).

The same test vectors as frontdesk's own code check this (tests/token_vectors.json).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

#: frontdesk refuses longer values (characters).
LIMITS = {"name": 100, "email": 254, "user_id": 128}


def mint_token(secret: str | bytes, site: str, visitor: str, *, ttl: int = 86400,
               expires: int | None = None, details: dict | None = None) -> str:
    """A token for `visitor` on `site`, valid for `ttl` seconds (or until `expires`), carrying
    `details` ({"name": ..., "email": ..., "user_id": ...}, each optional) if given."""
    key = secret.encode() if isinstance(secret, str) else secret
    exp = int(expires if expires is not None else time.time() + ttl)
    fields = {k: str(details[k]) for k in ("name", "email", "user_id") if details and details.get(k) is not None}
    for k, v in fields.items():
        if len(v) > LIMITS[k]:
            raise ValueError(f"{k} is longer than {LIMITS[k]} characters")
    if not fields:
        mac = hmac.new(key, f"{visitor}_{site}|{exp}".encode(), hashlib.sha256).hexdigest()
        return f"{exp}.{mac}"
    raw = json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()
    part = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    mac = hmac.new(key, f"{visitor}_{site}|{exp}|{part}".encode(), hashlib.sha256).hexdigest()
    return f"{exp}.{part}.{mac}"
