"""The triple-encoded `metadata` list filter (protocol doc §3.6).

The SDK percent-encodes each key and value, form-encodes the pairs, and its HTTP client
query-encodes the result. Starlette has already undone the last step; this undoes the rest:
percent-decode the whole string once, split on `&` and `=` (exactly one `=` per pair), then
percent-decode each key and value.
"""

from __future__ import annotations

from urllib.parse import unquote

from corral.api.errors import ApiError

__all__ = ["decode_metadata_filter"]


def decode_metadata_filter(query_value: str) -> dict[str, str]:
    """`k=v%2520w` (after query decoding) -> `{"k": "v w"}`; malformed pairs -> 400."""
    text = unquote(query_value)
    result: dict[str, str] = {}
    if not text:
        return result
    for pair in text.split("&"):
        parts = pair.split("=")
        if len(parts) != 2 or not parts[0]:
            raise ApiError(400, f"'metadata' filter pair {pair!r} must have the form key=value")
        result[unquote(parts[0])] = unquote(parts[1])
    return result
