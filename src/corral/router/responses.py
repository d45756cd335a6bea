"""The router's own answers (JSON bodies of protocol doc §2), sent as raw ASGI messages."""

from __future__ import annotations

import json

from corral.router.asgi import Send

__all__ = ["send_json", "send_port_not_open", "send_sandbox_not_found"]

SANDBOX_NOT_FOUND = "The sandbox was not found"
PORT_NOT_OPEN = "The sandbox is running but port is not open"


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
