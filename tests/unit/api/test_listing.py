"""`GET /v2/sandboxes` and `GET /sandboxes`: filters, triple-decoded metadata, pagination."""

from __future__ import annotations

from urllib.parse import quote, urlencode

import httpx
import pytest

from corral.api import ApiError
from corral.api.metadata_filter import decode_metadata_filter


def _sdk_metadata_param(metadata: dict[str, str]) -> str:
    """What e2b 2.x puts in `?metadata=` before the HTTP client query-encodes it."""
    return urlencode({quote(k): quote(v) for k, v in metadata.items()})


def test_triple_decoding_of_the_protocol_example() -> None:
    # Wire `?metadata=k%3Dv%252520w`; after query decoding the value is `k=v%2520w`.
    assert decode_metadata_filter("k=v%2520w") == {"k": "v w"}
    assert decode_metadata_filter("") == {}


@pytest.mark.parametrize(
    "metadata",
    [
        {"k": "v w"},
        {"spaced": "a b&c=d", "ü": "ß/%"},
        {"a": "1", "b": ""},
    ],
)
def test_triple_decoding_inverts_the_sdk(metadata: dict[str, str]) -> None:
    assert decode_metadata_filter(_sdk_metadata_param(metadata)) == metadata


@pytest.mark.parametrize("bad", ["novalue", "a=b=c", "=v", "a=1&&b=2"])
def test_malformed_metadata_pairs(bad: str) -> None:
    with pytest.raises(ApiError) as info:
        decode_metadata_filter(bad)
    assert info.value.status == 400


async def _create(client: httpx.AsyncClient, metadata: dict[str, str]) -> str:
    response = await client.post(
        "/v2/sandboxes", json={"templateID": "base", "metadata": metadata, "envVars": {}}
    )
    assert response.status_code == 201
    return str(response.json()["sandboxID"])


async def test_list_filters_by_metadata_on_the_wire(client: httpx.AsyncClient) -> None:
    tricky = await _create(client, {"spaced": "a b&c=d", "team": "x"})
    await _create(client, {"team": "x"})
    response = await client.get(
        "/v2/sandboxes", params={"metadata": _sdk_metadata_param({"spaced": "a b&c=d"})}
    )
    assert response.status_code == 200
    items = response.json()
    assert [item["sandboxID"] for item in items] == [tricky]
    item = items[0]
    assert item["metadata"] == {"spaced": "a b&c=d", "team": "x"}
    assert item["state"] == "running" and item["templateID"] == "base-id"
    assert "envdAccessToken" not in item
    for key in ("clientID", "startedAt", "endAt", "envdVersion", "cpuCount", "memoryMB"):
        assert key in item
    raw = await client.get("/v2/sandboxes?metadata=team%3Dx")
    assert len(raw.json()) == 2


async def test_list_state_order_and_template(client: httpx.AsyncClient) -> None:
    first = await _create(client, {})
    second = await _create(client, {})
    ids = [i["sandboxID"] for i in (await client.get("/v2/sandboxes")).json()]
    assert ids == [second, first]  # newest first by default
    ids = [i["sandboxID"] for i in (await client.get("/v2/sandboxes?order=asc")).json()]
    assert ids == [first, second]
    assert len((await client.get("/v2/sandboxes?state=running,paused")).json()) == 2
    assert (await client.get("/v2/sandboxes?state=paused")).json() == []
    assert len((await client.get("/v2/sandboxes?template=base")).json()) == 2
    assert (await client.get("/v2/sandboxes?template=other")).json() == []
    assert len((await client.get("/v2/sandboxes?startedAfter=2000-01-01T00:00:00Z")).json()) == 2
    future = "2999-01-02T03:04:05.123456+00:00"
    assert (await client.get("/v2/sandboxes", params={"startedAfter": future})).json() == []


async def test_pagination_with_next_token(client: httpx.AsyncClient) -> None:
    created = {await _create(client, {}) for _ in range(3)}
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        params = {"limit": "2", **({"nextToken": token} if token else {})}
        response = await client.get("/v2/sandboxes", params=params)
        assert response.status_code == 200
        seen += [i["sandboxID"] for i in response.json()]
        pages += 1
        token = response.headers.get("x-next-token", "")
        if not token:
            break
    assert pages == 2 and len(seen) == 3 and set(seen) == created


@pytest.mark.parametrize(
    "query, fragment",
    [
        ("limit=0", "'limit'"),
        ("limit=101", "'limit'"),
        ("limit=abc", "'limit'"),
        ("order=sideways", "'order'"),
        ("state=frozen", "'state'"),
        ("startedAfter=yesterday", "'startedAfter'"),
        ("nextToken=%21%21", "'nextToken'"),
        ("metadata=novalue", "'metadata'"),
    ],
)
async def test_bad_list_queries_are_400(
    client: httpx.AsyncClient, query: str, fragment: str
) -> None:
    response = await client.get(f"/v2/sandboxes?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == 400 and fragment in response.json()["message"]


async def test_v1_list_is_one_page_with_metadata_filter(client: httpx.AsyncClient) -> None:
    wanted = await _create(client, {"k": "v w"})
    await _create(client, {"k": "other"})
    response = await client.get(
        "/sandboxes", params={"metadata": _sdk_metadata_param({"k": "v w"})}
    )
    assert response.status_code == 200
    assert [i["sandboxID"] for i in response.json()] == [wanted]
    assert "x-next-token" not in response.headers
    assert len((await client.get("/sandboxes")).json()) == 2
