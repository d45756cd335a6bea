"""ProtoJSON helpers: how proto3 scalar types look in JSON (protocol doc §4.2).

Encoders produce what envd emits; decoders also accept the alternatives ProtoJSON allows
(numbers for enums and int64, strings for 32-bit ints, url-safe or unpadded base64, proto
field names besides lowerCamelCase ones). Every decoder raises `ProtoJsonError` with a
message naming the field, safe to send to clients.

Error hierarchy::

    ProtoJsonError (ValueError)   a JSON value does not fit the proto field it is read into
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Mapping
from typing import TypeVar

__all__ = [
    "ProtoJsonError",
    "decode_bool",
    "decode_bytes",
    "decode_enum",
    "decode_int32",
    "decode_int64",
    "decode_object",
    "decode_string",
    "decode_string_list",
    "decode_string_map",
    "decode_uint32",
    "encode_bytes",
    "encode_int64",
    "field",
]

E = TypeVar("E", bound=enum.IntEnum)

_UINT32_MAX = 0xFFFFFFFF
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class ProtoJsonError(ValueError):
    """A JSON value does not fit the proto field it is read into."""


def field(message: Mapping[str, object], json_name: str, proto_name: str | None = None) -> object:
    """The value of a field by its JSON name, or its proto name; None when absent or null."""
    value = message.get(json_name)
    if value is None and proto_name is not None:
        value = message.get(proto_name)
    return value


def decode_object(value: object, name: str) -> Mapping[str, object]:
    """A nested message (JSON object); null/absent reads as an empty message."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtoJsonError(f"{name}: expected an object")
    return value


def encode_bytes(data: bytes) -> str:
    """`bytes` -> standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def decode_bytes(value: object, name: str) -> bytes:
    """Standard or url-safe base64, with or without padding."""
    if value is None:
        return b""
    if not isinstance(value, str):
        raise ProtoJsonError(f"{name}: expected a base64 string")
    text = value.encode("ascii", "replace")
    if b"-" in text or b"_" in text:
        text = text.replace(b"-", b"+").replace(b"_", b"/")
    text += b"=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtoJsonError(f"{name}: invalid base64") from exc


def encode_int64(value: int) -> str:
    """`int64`/`uint64` -> decimal JSON string."""
    return str(value)


def _decode_integer(value: object, name: str, low: int, high: int) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ProtoJsonError(f"{name}: expected an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError as exc:
            raise ProtoJsonError(f"{name}: expected an integer") from exc
    else:
        raise ProtoJsonError(f"{name}: expected an integer")
    if not low <= number <= high:
        raise ProtoJsonError(f"{name}: {number} is out of range")
    return number


def decode_int64(value: object, name: str) -> int:
    """`int64`: a JSON string or number."""
    return _decode_integer(value, name, _INT64_MIN, _INT64_MAX)


def decode_uint32(value: object, name: str) -> int:
    """`uint32`: a JSON number (or numeric string)."""
    return _decode_integer(value, name, 0, _UINT32_MAX)


def decode_int32(value: object, name: str) -> int:
    """`int32`/`sint32`: a JSON number (or numeric string)."""
    return _decode_integer(value, name, _INT32_MIN, _INT32_MAX)


def decode_string(value: object, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ProtoJsonError(f"{name}: expected a string")
    return value


def decode_bool(value: object, name: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ProtoJsonError(f"{name}: expected a boolean")
    return value


def decode_enum(value: object, enum_type: type[E], name: str) -> E:
    """An enum by value name (`"SIGNAL_SIGKILL"`) or number; absent -> the zero value."""
    try:
        if value is None:
            return enum_type(0)
        if isinstance(value, str):
            return enum_type[value]
        if isinstance(value, int) and not isinstance(value, bool):
            return enum_type(value)
    except (KeyError, ValueError) as exc:
        raise ProtoJsonError(f"{name}: unknown value {value!r}") from exc
    raise ProtoJsonError(f"{name}: expected an enum name or number")


def decode_string_list(value: object, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ProtoJsonError(f"{name}: expected a list of strings")
    return tuple(value)


def decode_string_map(value: object, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        raise ProtoJsonError(f"{name}: expected an object of strings")
    return dict(value)
