"""Identifiers and secrets handed to clients."""

import re
import secrets

__all__ = ["new_access_token", "new_sandbox_id", "valid_sandbox_id"]

_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_SANDBOX_ID = re.compile(r"^[a-z0-9]{20}$")


def new_sandbox_id() -> str:
    """A 20-character lowercase id, safe in paths, DNS labels and cgroup names."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(20))


def valid_sandbox_id(value: str) -> bool:
    """Whether `value` has the shape of an id made by `new_sandbox_id`."""
    return bool(_SANDBOX_ID.match(value))


def new_access_token() -> str:
    """The per-sandbox envd access token (also the key of signed file URLs)."""
    return secrets.token_urlsafe(24)
