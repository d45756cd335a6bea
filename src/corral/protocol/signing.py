"""Signatures of `/files` links (protocol doc §7.5): one definition for router and agent.

    payload   = "<path>:<op>:<user>:<token>" [+ ":<expiration>"]
    signature = "v1_" + unpadded standard base64 of sha256(utf8(payload))

`op` is `read` for GET and `write` for POST; `user` is the `username` query value or "";
the expiration (unix seconds, as sent) is part of the payload only when the link has one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["compute_signature", "signature_matches", "signed_operation"]


def compute_signature(
    path: str, operation: str, username: str, access_token: str, expiration: str | None
) -> str:
    """`v1_` + unpadded standard base64 of sha256 of `path:op:user:token[:expiration]`."""
    payload = f"{path}:{operation}:{username}:{access_token}"
    if expiration is not None:
        payload = f"{payload}:{expiration}"
    digest = hashlib.sha256(payload.encode("utf-8", "surrogateescape")).digest()
    return "v1_" + base64.b64encode(digest).decode().rstrip("=")


def signature_matches(
    given: str,
    path: str,
    operation: str,
    username: str,
    access_token: str,
    expiration: str | None,
) -> bool:
    """Constant-time check of `given` against the signature the token produces."""
    expected = compute_signature(path, operation, username, access_token, expiration)
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogateescape"))


def signed_operation(method: str) -> str | None:
    """The `op` of the payload for an HTTP method (`read`/`write`), None if not signable."""
    return {"GET": "read", "POST": "write"}.get(method)
