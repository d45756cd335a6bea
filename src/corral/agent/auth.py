"""Who may call the agent (access token) and as whom processes run (Basic user).

Protocol doc §7.6: with a token configured, every path except `GET /health` and `/files`
needs `X-Access-Token` equal to it. §5.1: `Authorization: Basic base64("<user>:")` selects
the OS user; without it the sandbox's default user is used.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from corral.agent.errors import BadAuthorization

__all__ = ["UNAUTHORIZED_MESSAGE", "access_token_matches", "requested_username"]

UNAUTHORIZED_MESSAGE = (
    "unauthorized access, please provide a valid access token or method signing if supported"
)


def access_token_matches(presented: str | None, expected: str) -> bool:
    """Constant-time comparison of the `X-Access-Token` header with the sandbox token."""
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def requested_username(authorization: str | None, default: str) -> str:
    """The user named by `Authorization: Basic ...`, or `default` when the header is absent."""
    if authorization is None or not authorization.strip():
        return default
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise BadAuthorization("invalid authorization header: expected Basic credentials")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise BadAuthorization("invalid authorization header: bad base64") from exc
    username = decoded.partition(":")[0]
    if not username:
        return default
    return username
