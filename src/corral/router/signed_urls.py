"""Find the sandbox a signed `/files` link belongs to (protocol doc §7.5, routing part).

A signed link carries no sandbox id: the signature is recomputed with each running
sandbox's access token until one matches (tokens are per sandbox, so at most one does).
Comparison is constant-time; the signature is defined once, in `corral.protocol.signing`.
Expiry and the token itself are checked again by the agent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs

from corral.protocol.signing import compute_signature, signature_matches, signed_operation
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


def parse_signed_request(method: str, query_string: bytes) -> SignedFileRequest | None:
    """The signed-link parameters of a `/files` request, or None if it has no signature."""
    # surrogateescape: a non-UTF-8 path signs (and resolves, in the agent) byte for byte.
    params = parse_qs(
        query_string.decode("latin-1"), keep_blank_values=True, errors="surrogateescape"
    )
    signature = params.get("signature")
    if not signature:
        return None
    operation = signed_operation(method) or ""
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
    for sandbox in sandboxes:
        if signature_matches(
            request.signature,
            request.path,
            request.operation,
            request.username,
            sandbox.access_token,
            request.expiration,
        ):
            return sandbox
    return None
