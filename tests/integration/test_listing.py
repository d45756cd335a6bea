"""Listing through the official SDK (sync and async): filters, order and pagination."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from e2b import AsyncSandbox, Sandbox, SandboxQuery, SandboxState

pytestmark = pytest.mark.usefixtures("corral_server")


def _all_pages(query: SandboxQuery, limit: int | None = None, order: Any = None) -> list[list[str]]:
    paginator = Sandbox.list(query=query, limit=limit, order=order)
    pages: list[list[str]] = []
    while paginator.has_next:
        pages.append([item.sandbox_id for item in paginator.next_items()])
    return pages


@pytest.fixture(scope="module")
def three_tagged(corral_server: Any) -> Any:
    """Three sandboxes sharing a unique tag, created in order (oldest first)."""
    tag = f"list-{uuid.uuid4().hex[:8]}"
    made = [Sandbox.create(timeout=120, metadata={"tag": tag, "n": str(i)}) for i in range(3)]
    yield tag, [sbx.sandbox_id for sbx in made]
    for sbx in made:
        sbx.kill()


def test_metadata_filter_with_pagination(three_tagged: Any) -> None:
    tag, ids = three_tagged
    pages = _all_pages(SandboxQuery(metadata={"tag": tag}), limit=2)
    assert [len(page) for page in pages] == [2, 1]
    assert sorted(sum(pages, [])) == sorted(ids)


def test_order_by_start_time(three_tagged: Any) -> None:
    tag, ids = three_tagged
    query = SandboxQuery(metadata={"tag": tag})
    assert sum(_all_pages(query, order="asc"), []) == ids
    assert sum(_all_pages(query, order="desc"), []) == ids[::-1]
    assert sum(_all_pages(query), []) == ids[::-1]  # desc is the default


def test_metadata_values_must_all_match(three_tagged: Any) -> None:
    tag, ids = three_tagged
    assert sum(_all_pages(SandboxQuery(metadata={"tag": tag, "n": "1"})), []) == [ids[1]]
    assert sum(_all_pages(SandboxQuery(metadata={"tag": tag, "n": "9"})), []) == []


def test_state_template_and_started_after_filters(three_tagged: Any) -> None:
    tag, ids = three_tagged
    running = SandboxQuery(metadata={"tag": tag}, state=[SandboxState.RUNNING])
    assert sorted(sum(_all_pages(running), [])) == sorted(ids)
    paused = SandboxQuery(metadata={"tag": tag}, state=[SandboxState.PAUSED])
    assert sum(_all_pages(paused), []) == []
    base = SandboxQuery(metadata={"tag": tag}, template="base")
    assert sorted(sum(_all_pages(base), [])) == sorted(ids)
    other = SandboxQuery(metadata={"tag": tag}, template="no-such-template")
    assert sum(_all_pages(other), []) == []
    second_start = Sandbox.get_info(ids[1]).started_at
    after = SandboxQuery(metadata={"tag": tag}, started_after=second_start)
    assert sorted(sum(_all_pages(after), [])) == sorted(ids[1:])
    future = SandboxQuery(
        metadata={"tag": tag}, started_after=datetime.now(UTC) + timedelta(hours=1)
    )
    assert sum(_all_pages(future), []) == []


def test_metadata_with_reserved_characters(sandbox_factory: Callable[..., Any]) -> None:
    value = "a b&c=d%20/é"
    sbx = sandbox_factory(metadata={"odd key=&": value})
    found = _all_pages(SandboxQuery(metadata={"odd key=&": value}))
    assert sum(found, []) == [sbx.sandbox_id]


async def test_async_list_with_pagination(three_tagged: Any) -> None:
    tag, ids = three_tagged
    paginator = AsyncSandbox.list(query=SandboxQuery(metadata={"tag": tag}), limit=1, order="asc")
    seen: list[str] = []
    while paginator.has_next:
        page = await paginator.next_items()
        assert len(page) == 1
        seen += [item.sandbox_id for item in page]
        assert page[0].metadata["tag"] == tag
    assert seen == ids
