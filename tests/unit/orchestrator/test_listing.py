"""Filtering, ordering and paging of sandbox listings."""

from __future__ import annotations

from dataclasses import replace

import pytest

from corral.model import Limits, SandboxRecord, SandboxState
from corral.orchestrator import InvalidArgument, SandboxQuery
from corral.orchestrator.listing import select_page

BASE = SandboxRecord(
    sandbox_id="",
    template_id="base-id",
    alias="base",
    state=SandboxState.RUNNING,
    access_token="t",
    uid_base=100000,
    started_at=0.0,
    end_at=1e10,
    limits=Limits(),
    env_vars={},
    metadata={},
)
RECORDS = [
    replace(BASE, sandbox_id=f"s{i}", started_at=1000.0 + i, metadata={"parity": str(i % 2)})
    for i in range(7)
]


def _ids(page_items: tuple[SandboxRecord, ...]) -> list[str]:
    return [r.sandbox_id for r in page_items]


def test_default_is_newest_first_without_paging() -> None:
    page = select_page(RECORDS, SandboxQuery())
    assert _ids(page.items) == [f"s{i}" for i in reversed(range(7))]
    assert page.next_token is None


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_pages_cover_everything_once(order: str) -> None:
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = select_page(RECORDS, SandboxQuery(order=order, limit=3, next_token=token))  # type: ignore[arg-type]
        seen += _ids(page.items)
        pages += 1
        token = page.next_token
        if token is None:
            break
    assert pages == 3
    expected = [f"s{i}" for i in range(7)]
    assert seen == (expected if order == "asc" else expected[::-1])


def test_page_token_survives_removed_items() -> None:
    first = select_page(RECORDS, SandboxQuery(order="asc", limit=2))
    remaining = [r for r in RECORDS if r.sandbox_id != "s2"]
    second = select_page(remaining, SandboxQuery(order="asc", limit=2, next_token=first.next_token))
    assert _ids(second.items) == ["s3", "s4"]


def test_filters() -> None:
    odd = select_page(RECORDS, SandboxQuery(metadata={"parity": "1"}, order="asc"))
    assert _ids(odd.items) == ["s1", "s3", "s5"]
    assert select_page(RECORDS, SandboxQuery(metadata={"parity": "1", "x": "y"})).items == ()
    assert len(select_page(RECORDS, SandboxQuery(template="base")).items) == 7
    assert len(select_page(RECORDS, SandboxQuery(template="base-id")).items) == 7
    assert select_page(RECORDS, SandboxQuery(template="other")).items == ()
    assert select_page(RECORDS, SandboxQuery(states=frozenset({"paused"}))).items == ()
    after = select_page(RECORDS, SandboxQuery(started_after=1004.0, order="asc"))
    assert _ids(after.items) == ["s4", "s5", "s6"]  # "started at or after"


def test_bad_token_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="nextToken"):
        select_page(RECORDS, SandboxQuery(limit=2, next_token="not-a-token!"))
