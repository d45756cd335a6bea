from __future__ import annotations

from corral.router.signed_urls import (
    compute_signature,
    match_signed_request,
    parse_signed_request,
)

from .conftest import Route


def test_protocol_worked_example() -> None:
    assert (
        compute_signature("/home/user/x", "read", "", "tok-abc", None)
        == "v1_5J9S+nHEkDSmQlAX/GO0N7PUV7ZE6aZMI84csO03pWc"
    )


def test_parse_and_match() -> None:
    query = b"path=%2Fhome%2Fuser%2Fx&signature=v1_5J9S%2BnHEkDSmQlAX%2FGO0N7PUV7ZE6aZMI84csO03pWc"
    request = parse_signed_request("GET", query)
    assert request is not None
    assert (request.path, request.operation, request.username) == ("/home/user/x", "read", "")
    routes = [Route("a" * 20, "/a", "other"), Route("b" * 20, "/b", "tok-abc")]
    matched = match_signed_request(request, routes)
    assert matched is not None and matched.sandbox_id == "b" * 20
    # The same signature is not valid for a write, nor for another token.
    post = parse_signed_request("POST", query)
    assert post is not None and match_signed_request(post, routes) is None
    assert match_signed_request(request, routes[:1]) is None


def test_username_and_expiration_are_signed() -> None:
    sig = compute_signature("x", "write", "root", "t", "1700000000")
    query = f"path=x&username=root&signature={sig}&signature_expiration=1700000000".encode()
    request = parse_signed_request("POST", query.replace(b"+", b"%2B").replace(b"/", b"%2F"))
    assert request is not None and request.expiration == "1700000000"
    assert match_signed_request(request, [Route("c" * 20, "/c", "t")]) is not None
    tampered = parse_signed_request("POST", query.replace(b"root", b"user"))
    assert tampered is not None
    assert match_signed_request(tampered, [Route("c" * 20, "/c", "t")]) is None


def test_no_signature_parameter() -> None:
    assert parse_signed_request("GET", b"path=x") is None
    unknown_method = parse_signed_request("PUT", b"path=x&signature=v1_x")
    assert unknown_method is not None and match_signed_request(unknown_method, []) is None
