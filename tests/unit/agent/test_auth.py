"""Access token comparison and Basic-auth user selection."""

from __future__ import annotations

import base64

import pytest

from corral.agent.auth import access_token_matches, requested_username
from corral.agent.errors import BadAuthorization


def _basic(raw: str) -> str:
    return "Basic " + base64.b64encode(raw.encode()).decode()


def test_access_token_matches() -> None:
    assert access_token_matches("tok", "tok")
    assert not access_token_matches(None, "tok")
    assert not access_token_matches("tok ", "tok")
    assert not access_token_matches("TOK", "tok")
    assert not access_token_matches("", "tok")
    assert access_token_matches("ünï", "ünï")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "default"),
        ("", "default"),
        (_basic("root:"), "root"),
        (_basic("user"), "user"),
        (_basic("user:ignored-password"), "user"),
        (_basic(":"), "default"),
        ("basic " + base64.b64encode(b"root:").decode(), "root"),
    ],
)
def test_requested_username(header: str | None, expected: str) -> None:
    assert requested_username(header, "default") == expected


@pytest.mark.parametrize(
    "header", ["Bearer x", "Basic !!!", "Basic " + base64.b64encode(b"\xff:").decode()]
)
def test_bad_authorization(header: str) -> None:
    with pytest.raises(BadAuthorization):
        requested_username(header, "default")
