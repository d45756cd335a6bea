"""ProtoJSON scalar helpers."""

from __future__ import annotations

import enum

import pytest

from corral.protocol.protojson import (
    ProtoJsonError,
    decode_bool,
    decode_bytes,
    decode_enum,
    decode_int32,
    decode_int64,
    decode_object,
    decode_string,
    decode_string_list,
    decode_string_map,
    decode_uint32,
    encode_bytes,
    encode_int64,
    field,
)


class Color(enum.IntEnum):
    COLOR_UNSPECIFIED = 0
    COLOR_RED = 3


def test_bytes() -> None:
    assert encode_bytes(b"\xfb\xff") == "+/8="
    for text in ("+/8=", "+/8", "-_8=", "-_8"):
        assert decode_bytes(text, "f") == b"\xfb\xff"
    assert decode_bytes(None, "f") == b""
    for bad in ("@@@@", 5, "é"):
        with pytest.raises(ProtoJsonError, match="^f: "):
            decode_bytes(bad, "f")


def test_integers() -> None:
    assert encode_int64(2**40) == "1099511627776"
    assert decode_int64("1099511627776", "n") == decode_int64(2**40, "n") == 2**40
    assert decode_uint32("7", "n") == decode_uint32(7, "n") == decode_uint32(7.0, "n") == 7
    assert decode_uint32(None, "n") == 0
    assert decode_int32(-5, "n") == -5
    for bad in (-1, 2**32, True, "x", 1.5, [1]):
        with pytest.raises(ProtoJsonError):
            decode_uint32(bad, "n")
    with pytest.raises(ProtoJsonError):
        decode_int64(str(2**63), "n")


def test_enums() -> None:
    assert decode_enum("COLOR_RED", Color, "c") is Color.COLOR_RED
    assert decode_enum(3, Color, "c") is Color.COLOR_RED
    assert decode_enum(None, Color, "c") is Color.COLOR_UNSPECIFIED
    for bad in ("RED", 4, True, 1.0):
        with pytest.raises(ProtoJsonError):
            decode_enum(bad, Color, "c")


def test_strings_bools_lists_maps_objects() -> None:
    assert decode_string(None, "s") == "" and decode_string("x", "s") == "x"
    assert decode_bool(None, "b") is False and decode_bool(True, "b") is True
    assert decode_string_list(["a", "b"], "l") == ("a", "b")
    assert decode_string_map({"k": "v"}, "m") == {"k": "v"}
    assert decode_object(None, "o") == {}
    for call in (
        lambda: decode_string(1, "s"),
        lambda: decode_bool("true", "b"),
        lambda: decode_string_list(["a", 1], "l"),
        lambda: decode_string_map({"k": 1}, "m"),
        lambda: decode_object([], "o"),
    ):
        with pytest.raises(ProtoJsonError):
            call()
    assert field({"exitCode": 1}, "exitCode", "exit_code") == 1
    assert field({"exit_code": 2}, "exitCode", "exit_code") == 2
    assert field({}, "exitCode", "exit_code") is None
