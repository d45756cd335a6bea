"""Sandbox ids and access tokens."""

from __future__ import annotations

from corral.model import new_access_token, new_sandbox_id, valid_sandbox_id


def test_sandbox_ids_are_unique_and_path_safe() -> None:
    ids = {new_sandbox_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(valid_sandbox_id(i) for i in ids)


def test_shapes_that_are_not_sandbox_ids() -> None:
    for bad in ("", "ABCDEFGHIJKLMNOPQRST", "a" * 19, "a" * 21, "../../../etc/passwd0", "a/b" * 7):
        assert not valid_sandbox_id(bad)


def test_access_tokens_are_long_and_unique() -> None:
    tokens = {new_access_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(t) >= 32 for t in tokens)
