"""The router's own answers (JSON bodies of protocol doc §2), sent as raw ASGI messages."""

from __future__ import annotations

import json

from corral.router.asgi import Send

__all__ = [
    "error_response_bytes",
    "send_json",
    "send_port_not_open",
    "send_sandbox_not_found",
    "send_traffic_forbidden",
]

SANDBOX_NOT_FOUND = "The sandbox was not found"
PORT_NOT_OPEN = "The sandbox is running but port is not open"
TRAFFIC_FORBIDDEN = (
    "This sandbox was created with network.allowPublicTraffic=false: send its "
    "trafficAccessToken (from the create response) in the e2b-traffic-access-token header"
)


async def send_json(send: Send, status: int, body: object) -> None:
    payload = json.dumps(body, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload, "more_body": False})


async def send_sandbox_not_found(send: Send, sandbox_id: str) -> None:
    """502 that the SDK maps to `SandboxNotRunningException` ("was not found")."""
    await send_json(send, 502, {"sandboxId": sandbox_id, "message": SANDBOX_NOT_FOUND, "code": 502})


async def send_port_not_open(send: Send, sandbox_id: str) -> None:
    """502 that the SDK maps to `SandboxUnreachableException` ("port is not open")."""
    await send_json(send, 502, {"sandboxId": sandbox_id, "message": PORT_NOT_OPEN, "code": 502})


async def send_traffic_forbidden(send: Send, sandbox_id: str) -> None:
    """403 for a preview request without the sandbox's traffic access token."""
    await send_json(send, 403, {"sandboxId": sandbox_id, "message": TRAFFIC_FORBIDDEN, "code": 403})


def error_response_bytes(status: int, phrase: str, body: object) -> bytes:
    """A complete HTTP/1.1 JSON answer that closes the connection (for raw transports)."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    return (
        b"HTTP/1.1 %d %b\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n%b" % (status, phrase.encode(), len(payload), payload)
    )
