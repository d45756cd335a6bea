"""Find the sandbox a signed `/files` link belongs to (protocol doc §7.5, routing part).

A signed link carries no sandbox id: the signature is recomputed with each running
sandbox's access token until one matches (tokens are per sandbox, so at most one does).
Comparison is constant-time. Expiry and the token itself are checked again by the agent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs

from corral.router.directory import RoutableSandbox

__all__ = ["SignedFileRequest", "compute_signature", "match_signed_request", "parse_signed_request"]


@dataclass(frozen=True)
class SignedFileRequest:
    path: str
    operation: str
    """`read` (GET) or `write` (POST)."""
    username: str
    signature: str
    expiration: str | None


def compute_signature(
    path: str, operation: str, username: str, access_token: str, expiration: str | None
) -> str:
    """`v1_` + unpadded standard base64 of sha256 of `path:op:user:token[:expiration]`."""
    payload = f"{path}:{operation}:{username}:{access_token}"
    if expiration is not None:
        payload = f"{payload}:{expiration}"
    digest = hashlib.sha256(payload.encode("utf-8")).digest()
    return "v1_" + base64.b64encode(digest).decode().rstrip("=")


def parse_signed_request(method: str, query_string: bytes) -> SignedFileRequest | None:
    """The signed-link parameters of a `/files` request, or None if it has no signature."""
    params = parse_qs(query_string.decode("latin-1"), keep_blank_values=True)
    signature = params.get("signature")
    if not signature:
        return None
    operation = {"GET": "read", "POST": "write"}.get(method, "")
    expiration = params.get("signature_expiration")
    return SignedFileRequest(
        path=params.get("path", [""])[0],
        operation=operation,
        username=params.get("username", [""])[0],
        signature=signature[0],
        expiration=expiration[0] if expiration else None,
    )


def match_signed_request(
    request: SignedFileRequest, sandboxes: Iterable[RoutableSandbox]
) -> RoutableSandbox | None:
    """The sandbox whose token reproduces `request.signature`, or None."""
    if not request.operation:
        return None
    given = request.signature.encode()
    for sandbox in sandboxes:
        expected = compute_signature(
            request.path,
            request.operation,
            request.username,
            sandbox.access_token,
            request.expiration,
        )
        if hmac.compare_digest(expected.encode(), given):
            return sandbox
    return None
