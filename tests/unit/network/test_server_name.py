"""SNI from real ClientHellos (Python's `ssl` over a memory BIO) and Host from HTTP heads."""

from __future__ import annotations

import ssl

import pytest

from corral.network.server_name import MAX_PEEK, NEED_MORE, Peek, server_name


def client_hello(name: str | None) -> bytes:
    """The first flight of a real TLS client asking for `name`."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_sni_of_a_real_client_hello() -> None:
    hello = client_hello("API.Example.test")
    assert server_name(hello) == Peek("tls", "api.example.test")


def test_partial_hello_needs_more_at_every_cut() -> None:
    hello = client_hello("a.example.test")
    for cut in range(len(hello)):
        assert server_name(hello[:cut]) is NEED_MORE, cut


def test_hello_split_over_two_records() -> None:
    hello = client_hello("split.example.test")
    body = hello[5:]
    first, second = body[:40], body[40:]
    records = b""
    for fragment in (first, second):
        records += b"\x16\x03\x01" + len(fragment).to_bytes(2, "big") + fragment
    assert server_name(records) == Peek("tls", "split.example.test")


def test_hello_without_sni_and_other_tls() -> None:
    assert server_name(client_hello(None)) == Peek("tls", None)  # IP-literal style client
    assert server_name(b"\x16\x03\x01\x00\x04\x02\x00\x00\x00") == Peek("tls", None)
    assert server_name(b"\x17\x03\x03\x00\x01x") == Peek("unknown", None)


def test_oversized_record_gives_up() -> None:
    assert server_name(b"\x16\x03\x01\xff\xff") == Peek("tls", None)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"GET / HTTP/1.1\r\nHost: Example.TEST:8080\r\nAccept: */*\r\n\r\n", "example.test"),
        (b"POST /x HTTP/1.1\r\nhost:a.test\r\n\r\nbody", "a.test"),
        (b"GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n", "a.test"),
        (b"GET http://evil.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n", None),
        (b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n", None),
        (b"GET / HTTP/1.1\r\nX: y\r\n\r\n", None),
        (b"GET / HTTP/1.1\r\nHost: a.test\r\n  folded\r\n\r\n", None),
        (b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", None),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", None),
    ],
)
def test_http_host(head: bytes, expected: str | None) -> None:
    assert server_name(head) == Peek("http", expected)


def test_http_head_in_pieces_and_too_long() -> None:
    assert server_name(b"GE") is NEED_MORE
    assert server_name(b"GET / HTTP/1.1\r\nHost: a.test\r\n") is NEED_MORE
    assert server_name(b"GET / HTTP/1.1\r\nX: " + b"y" * MAX_PEEK) == Peek("http", None)
    assert server_name(b"SSH-2.0-OpenSSH\r\n") == Peek("unknown", None)
