"""The query of a `/files` request and the sandbox path it names (protocol doc §6.1, §7.2).

Paths resolve as `corral.agent.user_paths.resolve_user_path` says, an empty one to HOME;
this module adds the `/files` limits (no NUL byte, at most 4096 bytes) as 400 answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

from corral.agent.files.errors import BadFileRequest
from corral.agent.user_paths import resolve_user_path
from corral.agent.users import User

__all__ = ["FilesQuery", "resolve_path"]

_MAX_PATH_BYTES = 4096


@dataclass(frozen=True, slots=True)
class FilesQuery:
    """The `/files` query parameters (the first of repeated ones wins)."""

    path: str | None
    username: str | None
    signature: str | None
    expiration: str | None

    @classmethod
    def parse(cls, query: str) -> FilesQuery:
        # The router decodes the same way: signatures cover the exact decoded string, and
        # surrogateescape keeps a non-UTF-8 path byte for byte.
        params = parse_qs(query, keep_blank_values=True, errors="surrogateescape")

        def first(name: str) -> str | None:
            values = params.get(name)
            return values[0] if values else None

        return cls(
            path=first("path"),
            username=first("username"),
            signature=first("signature"),
            expiration=first("signature_expiration"),
        )


def resolve_path(raw: str, user: User) -> str:
    """The absolute, normalised path `raw` names for `user`; raises `BadFileRequest`."""
    if "\0" in raw:
        raise BadFileRequest("invalid path: it contains a NUL byte")
    if len(raw.encode("utf-8", "surrogateescape")) > _MAX_PATH_BYTES:
        raise BadFileRequest(f"invalid path: longer than {_MAX_PATH_BYTES} bytes")
    return resolve_user_path(raw, user)
