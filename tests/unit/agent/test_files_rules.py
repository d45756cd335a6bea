"""The pure rules of `/files`: access, paths, metadata limits, encodings, gzip, OS errors."""

from __future__ import annotations

import errno
import gzip
import zlib

import pytest

from corral.agent.files.access import authorize
from corral.agent.files.download import wants_gzip
from corral.agent.files.errors import (
    BadFileRequest,
    FileAccessDenied,
    FileNotFound,
    FileOperationFailed,
    NotAcceptable,
    NotEnoughSpace,
    from_os_error,
)
from corral.agent.files.gzip_stream import GzipDecoder
from corral.agent.files.metadata import metadata_from_headers
from corral.agent.files.request import FilesQuery, resolve_path
from corral.agent.users import User
from corral.protocol.signing import compute_signature

TOKEN = "tok-abc"
NOW = 1_700_000_000.0
USER = User(name="user", uid=1000, gid=1000, home="/home/user", shell="/bin/bash", groups=())


def query(**params: str) -> FilesQuery:
    from urllib.parse import urlencode

    return FilesQuery.parse(urlencode(params))


def signed(path: str, op: str = "read", user: str = "", expiration: str | None = None) -> dict:
    params = {"path": path, "signature": compute_signature(path, op, user, TOKEN, expiration)}
    if user:
        params["username"] = user
    if expiration is not None:
        params["signature_expiration"] = expiration
    return params


# --- access ------------------------------------------------------------------------------


def test_the_worked_example_of_the_protocol_doc() -> None:
    expected = "v1_5J9S+nHEkDSmQlAX/GO0N7PUV7ZE6aZMI84csO03pWc"
    assert compute_signature("/home/user/x", "read", "", "tok-abc", None) == expected


def test_token_header_must_match_and_then_needs_no_signature() -> None:
    authorize("GET", query(path="/x"), TOKEN, TOKEN, NOW)
    with pytest.raises(FileAccessDenied, match="unauthorized access"):
        authorize("GET", query(path="/x"), "wrong", TOKEN, NOW)


def test_signature_rules_and_their_exact_messages() -> None:
    authorize("GET", query(**signed("/x")), None, TOKEN, NOW)
    authorize("POST", query(**signed("/x", "write", "root")), None, TOKEN, NOW)
    authorize("GET", query(**signed("/x", expiration=str(int(NOW)))), None, TOKEN, NOW)
    cases = [
        ("GET", {"path": "/x"}, "missing signature query parameter"),
        ("GET", {**signed("/x"), "path": "/y"}, "invalid signature"),
        ("POST", signed("/x"), "invalid signature"),  # a read link used to write
        ("GET", {**signed("/x"), "username": "root"}, "invalid signature"),
        ("GET", {**signed("/x"), "signature_expiration": "9999999999"}, "invalid signature"),
        ("PUT", signed("/x"), "invalid signature"),
        ("GET", signed("/x", expiration=str(int(NOW) - 1)), "signature is already expired"),
    ]
    for method, params, message in cases:
        with pytest.raises(FileAccessDenied) as info:
            authorize(method, query(**params), None, TOKEN, NOW)
        assert str(info.value) == message, params
    with pytest.raises(BadFileRequest, match="signature_expiration"):
        authorize("GET", query(**signed("/x", expiration="soon")), None, TOKEN, NOW)


def test_without_a_token_everything_is_open() -> None:
    authorize("GET", query(path="/x"), None, "", NOW)


def test_repeated_parameters_take_the_first_and_percent_escapes_decode() -> None:
    parsed = FilesQuery.parse("path=%2Fa%20b&path=%2Fother&username=&signature=v1_%2B")
    assert parsed == FilesQuery(path="/a b", username="", signature="v1_+", expiration=None)


# --- paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "resolved"),
    [
        ("/abs/file", "/abs/file"),
        ("rel/file", "/home/user/rel/file"),
        ("", "/home/user"),
        ("~", "/home/user"),
        ("~/x", "/home/user/x"),
        ("~other/x", "/home/user/~other/x"),
        ("../../../../etc/passwd", "/etc/passwd"),
        ("/a/./b/../c//d/", "/a/c/d"),
        ("//x", "/x"),
    ],
)
def test_resolve_path(raw: str, resolved: str) -> None:
    assert resolve_path(raw, USER) == resolved


def test_resolve_path_refuses_nul_and_huge_paths() -> None:
    with pytest.raises(BadFileRequest, match="NUL"):
        resolve_path("/a\0b", USER)
    with pytest.raises(BadFileRequest, match="longer"):
        resolve_path("/" + "a" * 5000, USER)


# --- metadata -------------------------------------------------------------------------------


def test_metadata_from_headers() -> None:
    headers = {"x-metadata-owner": "me", "x-metadata-k": "", "content-type": "x"}
    assert metadata_from_headers(headers) == {"owner": "me", "k": ""}
    assert metadata_from_headers({}) == {}


@pytest.mark.parametrize(
    "headers",
    [
        {"x-metadata-": "v"},
        {"x-metadata-k": "caf\u00e9"},
        {"x-metadata-k": "tab\there"},
        {"x-metadata-" + "k" * 247: "v"},
        {f"x-metadata-k{n}": "v" * 1000 for n in range(5)},
    ],
)
def test_metadata_limits(headers: dict[str, str]) -> None:
    with pytest.raises(BadFileRequest):
        metadata_from_headers(headers)


def test_metadata_key_of_246_bytes_is_allowed() -> None:
    assert metadata_from_headers({"x-metadata-" + "k" * 246: "v"})


# --- encodings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "gzip_it"),
    [
        (None, False),
        ("gzip", True),  # what files.read(gzip=True) sends
        ("gzip, deflate", False),  # the SDK's default: identity is as good and cheaper
        ("identity", False),
        ("gzip;q=0", False),
        ("gzip, identity;q=0", True),
        ("*;q=0, gzip", True),
        ("br", False),
    ],
)
def test_wants_gzip(header: str | None, gzip_it: bool) -> None:
    assert wants_gzip(header) is gzip_it


@pytest.mark.parametrize("header", ["identity;q=0", "*;q=0", "br, identity;q=0"])
def test_no_acceptable_encoding_is_406(header: str) -> None:
    with pytest.raises(NotAcceptable):
        wants_gzip(header)


def test_gzip_decoder_streams_members_and_bounds_each_step() -> None:
    data = gzip.compress(b"\0" * (8 << 20)) + gzip.compress(b"tail")
    decoder = GzipDecoder()
    pieces = [p for i in range(0, len(data), 1000) for p in decoder.feed(data[i : i + 1000])]
    pieces.append(decoder.finish())
    assert b"".join(pieces) == b"\0" * (8 << 20) + b"tail"
    assert max(len(p) for p in pieces) <= 1 << 20  # a bomb never becomes one big buffer


def test_gzip_decoder_errors() -> None:
    with pytest.raises(BadFileRequest, match="invalid gzip"):
        list(GzipDecoder().feed(b"not gzip at all"))
    truncated = GzipDecoder()
    list(truncated.feed(gzip.compress(b"x" * 1000)[:-6]))
    with pytest.raises(BadFileRequest, match="ends before"):
        truncated.finish()
    with pytest.raises(BadFileRequest, match="empty"):
        GzipDecoder().finish()
    raw_deflate = zlib.compress(b"x")
    with pytest.raises(BadFileRequest):
        list(GzipDecoder().feed(raw_deflate))


# --- OS errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "kind", "message"),
    [
        (errno.ENOSPC, NotEnoughSpace, "not enough disk space available"),
        (errno.EDQUOT, NotEnoughSpace, "not enough disk space available"),
        (errno.ENOENT, FileNotFound, "path '/p' does not exist"),
        (errno.EISDIR, BadFileRequest, "path '/p' is a directory"),
        (errno.ENOTDIR, BadFileRequest, "not a directory"),
        (errno.EACCES, BadFileRequest, "Permission denied"),
        (errno.EIO, FileOperationFailed, "Input/output error"),
    ],
)
def test_os_errors_map_to_statuses(code: int, kind: type, message: str) -> None:
    import os

    error = from_os_error(OSError(code, os.strerror(code)), "/p")
    assert type(error) is kind
    assert message in str(error)
