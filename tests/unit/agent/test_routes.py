"""Paths, access token, Connect framing and error mapping at the HTTP level."""

from __future__ import annotations

import json

import pytest

from corral.protocol.connect import encode_envelope

from .harness import AgentClient, AgentProcess

UNAUTHORIZED = {
    "code": 401,
    "message": "unauthorized access, please provide a valid access token or method signing "
    "if supported",
}


def test_health_is_204_without_token(client: AgentClient) -> None:
    response = client.http.get("/health")
    assert response.status_code == 204 and response.content == b""


def test_envs_returns_sandbox_env_vars(agent: AgentProcess, client: AgentClient) -> None:
    response = client.http.get("/envs", headers=client.headers())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == dict(agent.config.env_vars)


@pytest.mark.parametrize("token", [None, "wrong", "test-token-x", "TEST-TOKEN"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/envs"),
        ("POST", "/process.Process/List"),
        ("POST", "/process.Process/Start"),
        ("POST", "/filesystem.Filesystem/Stat"),
        ("GET", "/nope"),
        ("POST", "/health"),
    ],
)
def test_access_token_required(
    client: AgentClient, token: str | None, method: str, path: str
) -> None:
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["x-access-token"] = token
    response = client.http.request(method, path, content=b"{}", headers=headers)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_files_checks_its_own_access(client: AgentClient) -> None:
    """`/files` skips the token rule of the other paths: it also takes signed links."""
    for method in ("GET", "POST"):
        response = client.http.request(method, "/files", params={"path": "/x"})
        assert response.status_code == 401
        assert response.json() == {"code": 401, "message": "missing signature query parameter"}


def test_no_token_configured_means_open(agent_factory: object) -> None:
    agent = agent_factory(token="")  # type: ignore[operator]
    response = agent.client.http.post(
        "/process.Process/List", content=b"{}", headers={"content-type": "application/json"}
    )
    assert response.status_code == 200 and response.json() == {}


def test_unknown_unary_rpc_is_unimplemented(client: AgentClient) -> None:
    response = client.http.post(
        "/filesystem.Filesystem/NoSuchCall",
        content=b'{"path":"/"}',
        headers=client.headers(content_type="application/json"),
    )
    assert response.status_code == 501
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == "unimplemented"


def test_unknown_streaming_rpc_is_unimplemented(client: AgentClient) -> None:
    body = encode_envelope(b'{"path":"/"}')
    response = client.http.post(
        "/filesystem.Filesystem/NoSuchStream",
        content=iter([body]),
        headers=client.headers(content_type="application/connect+json"),
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/connect+json"
    payload = response.content[5:]
    assert response.content[0] == 2
    assert json.loads(payload)["error"]["code"] == "unimplemented"


def test_unknown_path_is_json_404(client: AgentClient) -> None:
    response = client.http.get("/nope", headers=client.headers())
    assert response.status_code == 404 and response.json()["code"] == 404


def test_wrong_method_and_content_type(client: AgentClient) -> None:
    assert client.http.get("/process.Process/List", headers=client.headers()).status_code == 405
    response = client.http.post(
        "/process.Process/List",
        content=b"{}",
        headers=client.headers(content_type="application/proto"),
    )
    assert response.status_code == 415
    response = client.http.post(
        "/process.Process/Start",
        content=b"{}",
        headers=client.headers(content_type="application/json"),
    )
    assert response.status_code == 415  # a streaming RPC needs application/connect+json


def test_unary_content_type_parameters_are_tolerated(client: AgentClient) -> None:
    response = client.unary_raw("List", b"{}", content_type="application/json; charset=utf-8")
    assert response.status_code == 200


@pytest.mark.parametrize("body", [b"{not json", b"[1]", b'"x"'])
def test_malformed_unary_body_is_invalid_argument(client: AgentClient, body: bytes) -> None:
    response = client.unary_raw("SendSignal", body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_argument"


def test_empty_unary_body_reads_as_empty_message(client: AgentClient) -> None:
    assert client.unary_raw("List", b"").status_code == 200


def test_stream_with_two_messages_is_invalid(client: AgentClient) -> None:
    message = encode_envelope(b'{"process":{"cmd":"/bin/true"}}')
    for response in client.open_stream("/process.Process/Start", [message, message]):
        raw = response.read()
    assert raw[0] == 2 and json.loads(raw[5:])["error"]["code"] == "invalid_argument"


def test_truncated_and_compressed_envelopes(client: AgentClient) -> None:
    for blob in (encode_envelope(b'{"process":{}}')[:-3], b"\x01\x00\x00\x00\x02{}"):
        for response in client.open_stream("/process.Process/Start", [blob]):
            raw = response.read()
        assert response.status_code == 200
        assert raw[0] == 2 and json.loads(raw[5:])["error"]["code"] == "invalid_argument"
