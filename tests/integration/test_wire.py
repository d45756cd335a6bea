"""Wire details the SDK hides: status codes and JSON error bodies (protocol doc §2, §3, §7)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from corral.model import new_sandbox_id

API_KEY = {"X-API-KEY": "e2b_corral_test"}
ENVD_PORT = "49983"


def assert_control_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """A control-plane error: exact status, JSON `{"code": <int>, "message": <str>}`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict)
    assert body["code"] == status
    assert isinstance(body["message"], str) and body["message"]
    return body


def data_plane(sandbox_id: str, port: str = ENVD_PORT, **extra: str) -> dict[str, str]:
    return {"E2b-Sandbox-Id": sandbox_id, "E2b-Sandbox-Port": port, **extra}


@pytest.fixture
def raw_sandbox(http: httpx.Client, sandbox_registry: Any) -> Iterator[dict[str, Any]]:
    """A sandbox created with a raw `POST /v2/sandboxes`; yields the 201 body."""
    response = http.post(
        "/v2/sandboxes",
        headers=API_KEY,
        json={"templateID": "base", "timeout": 60, "metadata": {}, "envVars": {}},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    sandbox_registry.add(body["sandboxID"])
    try:
        yield body
    finally:
        http.delete(f"/sandboxes/{body['sandboxID']}", headers=API_KEY)


# --- control plane --------------------------------------------------------------------------


def test_create_response_shape(raw_sandbox: dict[str, Any]) -> None:
    for key in ("templateID", "sandboxID", "clientID", "envdVersion"):
        assert isinstance(raw_sandbox[key], str) and raw_sandbox[key], key
    assert raw_sandbox["envdVersion"] == "0.6.13"
    assert isinstance(raw_sandbox.get("envdAccessToken"), str) and raw_sandbox["envdAccessToken"]
    assert len(raw_sandbox["sandboxID"]) == 20


def test_missing_api_key_is_401(http: httpx.Client) -> None:
    assert_control_error(http.get("/v2/sandboxes"), 401)
    assert_control_error(
        http.post("/v2/sandboxes", json={"templateID": "base", "metadata": {}, "envVars": {}}),
        401,
    )


def test_unknown_route_is_json_404(http: httpx.Client) -> None:
    assert_control_error(http.get("/no/such/route", headers=API_KEY), 404)
    assert_control_error(http.post("/v9/whatever", headers=API_KEY, json={}), 404)


def test_malformed_json_is_400(http: httpx.Client) -> None:
    response = http.post(
        "/v2/sandboxes",
        headers={**API_KEY, "Content-Type": "application/json"},
        content=b'{"templateID": "base",',
    )
    assert_control_error(response, 400)


def test_wrong_json_shape_is_400(http: httpx.Client) -> None:
    response = http.post("/v2/sandboxes", headers=API_KEY, json={"templateID": 42, "timeout": "x"})
    assert_control_error(response, 400)


def test_unknown_template_is_an_error_not_a_crash(http: httpx.Client) -> None:
    response = http.post(
        "/v2/sandboxes",
        headers=API_KEY,
        json={"templateID": "no-such-template-xyz", "metadata": {}, "envVars": {}},
    )
    assert 400 <= response.status_code < 500, response.text
    assert_control_error(response, response.status_code)


def test_unknown_sandbox_is_json_404(http: httpx.Client) -> None:
    unknown = new_sandbox_id()
    assert_control_error(http.get(f"/sandboxes/{unknown}", headers=API_KEY), 404)
    assert_control_error(http.delete(f"/sandboxes/{unknown}", headers=API_KEY), 404)
    assert_control_error(
        http.post(f"/sandboxes/{unknown}/timeout", headers=API_KEY, json={"timeout": 10}), 404
    )
    assert_control_error(
        http.post(f"/v2/sandboxes/{unknown}/connect", headers=API_KEY, json={}), 404
    )


def test_connect_running_is_200_and_kill_is_204(
    http: httpx.Client, raw_sandbox: dict[str, Any]
) -> None:
    sandbox_id = raw_sandbox["sandboxID"]
    connected = http.post(f"/v2/sandboxes/{sandbox_id}/connect", headers=API_KEY, json={})
    assert connected.status_code == 200, connected.text
    assert connected.json()["sandboxID"] == sandbox_id
    detail = http.get(f"/sandboxes/{sandbox_id}", headers=API_KEY)
    assert detail.status_code == 200
    for key in ("startedAt", "endAt", "cpuCount", "memoryMB", "diskSizeMB", "state"):
        assert key in detail.json(), key
    assert detail.json()["state"] == "running"
    killed = http.delete(f"/sandboxes/{sandbox_id}", headers=API_KEY)
    assert killed.status_code == 204
    assert killed.content == b""
    assert_control_error(http.delete(f"/sandboxes/{sandbox_id}", headers=API_KEY), 404)


# --- data plane -----------------------------------------------------------------------------


def test_unknown_sandbox_data_plane_is_502_not_found(http: httpx.Client) -> None:
    unknown = new_sandbox_id()
    for method, path in (("GET", "/health"), ("POST", "/process.Process/List")):
        response = http.request(method, path, headers=data_plane(unknown), json={})
        assert response.status_code == 502
        assert response.headers["content-type"].startswith("application/json")
        assert response.json() == {
            "sandboxId": unknown,
            "message": "The sandbox was not found",
            "code": 502,
        }


def test_killed_sandbox_data_plane_is_502_not_found(
    http: httpx.Client, raw_sandbox: dict[str, Any]
) -> None:
    sandbox_id = raw_sandbox["sandboxID"]
    assert http.get("/health", headers=data_plane(sandbox_id)).status_code == 204
    assert http.delete(f"/sandboxes/{sandbox_id}", headers=API_KEY).status_code == 204
    response = http.get("/health", headers=data_plane(sandbox_id))
    assert response.status_code == 502
    assert response.json() == {
        "sandboxId": sandbox_id,
        "message": "The sandbox was not found",
        "code": 502,
    }


def test_closed_port_is_502_port_not_open(http: httpx.Client, raw_sandbox: dict[str, Any]) -> None:
    sandbox_id = raw_sandbox["sandboxID"]
    response = http.get("/", headers=data_plane(sandbox_id, port="12345"))
    assert response.status_code == 502
    assert response.json() == {
        "sandboxId": sandbox_id,
        "message": "The sandbox is running but port is not open",
        "code": 502,
    }


def test_envd_health_is_204(http: httpx.Client, raw_sandbox: dict[str, Any]) -> None:
    response = http.get("/health", headers=data_plane(raw_sandbox["sandboxID"]))
    assert response.status_code == 204
    assert response.content == b""


def test_envd_rpc_requires_the_access_token(
    http: httpx.Client, raw_sandbox: dict[str, Any]
) -> None:
    sandbox_id = raw_sandbox["sandboxID"]
    rpc_headers = {"Content-Type": "application/json", "Connect-Protocol-Version": "1"}
    denied = http.post(
        "/process.Process/List", headers={**data_plane(sandbox_id), **rpc_headers}, json={}
    )
    assert denied.status_code == 401
    wrong = http.post(
        "/process.Process/List",
        headers={**data_plane(sandbox_id, **{"X-Access-Token": "wrong"}), **rpc_headers},
        json={},
    )
    assert wrong.status_code == 401
    allowed = http.post(
        "/process.Process/List",
        headers={
            **data_plane(sandbox_id, **{"X-Access-Token": raw_sandbox["envdAccessToken"]}),
            **rpc_headers,
        },
        json={},
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["content-type"].startswith("application/json")
    assert "processes" in allowed.json() or allowed.json() == {}


def test_unsigned_file_link_without_sandbox_is_401(http: httpx.Client) -> None:
    response = http.get("/files", params={"path": "/etc/hostname", "signature": "v1_bogus"})
    assert response.status_code == 401
    assert response.json() == {"code": 401, "message": "invalid signature"}
