"""Who may use `/files`: the access token header or a signed link (protocol doc §7.5).

Order: an `X-Access-Token` header must equal the token; without it a signature is required
(missing → 401, mismatch → 401, both constant-time); a valid signature whose
`signature_expiration` lies in the past → 401 "signature is already expired". A sandbox
without a token accepts every request.
"""

from __future__ import annotations

from corral.agent.auth import UNAUTHORIZED_MESSAGE, access_token_matches
from corral.agent.files.errors import BadFileRequest, FileAccessDenied
from corral.agent.files.request import FilesQuery
from corral.protocol.signing import signature_matches, signed_operation

__all__ = ["authorize"]


def authorize(
    method: str, query: FilesQuery, token_header: str | None, access_token: str, now: float
) -> None:
    """Raise `FileAccessDenied` (or `BadFileRequest`) unless the request may proceed."""
    if not access_token:
        return
    if token_header is not None:
        if not access_token_matches(token_header, access_token):
            raise FileAccessDenied(UNAUTHORIZED_MESSAGE)
        return
    if query.signature is None:
        raise FileAccessDenied("missing signature query parameter")
    operation = signed_operation(method)
    if operation is None or not signature_matches(
        query.signature,
        query.path or "",
        operation,
        query.username or "",
        access_token,
        query.expiration,
    ):
        raise FileAccessDenied("invalid signature")
    if query.expiration is None:
        return
    try:
        expires = int(query.expiration)
    except ValueError:
        raise BadFileRequest(
            f"invalid signature_expiration '{query.expiration}': expected unix seconds"
        ) from None
    if expires < now:
        raise FileAccessDenied("signature is already expired")
