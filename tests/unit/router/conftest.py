from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from corral.router import DataPlaneRouter

from .stand_in_agent import serve_asgi, serve_stand_in_agent


@dataclass(frozen=True)
class Route:
    sandbox_id: str
    agent_socket: str
    access_token: str
    traffic_access_token: str | None = None


class DictDirectory:
    """A `SandboxDirectory` over a dict (the orchestrator's role in production)."""

    def __init__(self) -> None:
        self.routes_by_id: dict[str, Route] = {}

    def find_route(self, sandbox_id: str) -> Route | None:
        return self.routes_by_id.get(sandbox_id)

    def routes(self) -> list[Route]:
        return list(self.routes_by_id.values())


async def control_plane_marker(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
    """Fallback app: answers 418 so tests can tell it was reached."""
    assert callable(send)
    await send({"type": "http.response.start", "status": 418, "headers": []})
    await send({"type": "http.response.body", "body": b"control plane"})


SANDBOX = "s" * 20
TOKEN = "tok-abc"


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short temp dir: unix socket paths are limited to 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="cr", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def agent_socket(short_dir: Path) -> AsyncIterator[str]:
    socket_path = str(short_dir / "agent.sock")
    async with serve_stand_in_agent(socket_path):
        yield socket_path


@pytest.fixture
def directory(agent_socket: str) -> DictDirectory:
    directory = DictDirectory()
    directory.routes_by_id[SANDBOX] = Route(SANDBOX, agent_socket, TOKEN)
    return directory


@pytest.fixture
def router(directory: DictDirectory) -> DataPlaneRouter:
    return DataPlaneRouter(directory, control_plane_marker)  # type: ignore[arg-type]


@pytest.fixture
async def base_url(router: DataPlaneRouter) -> AsyncIterator[str]:
    """The router served by uvicorn on a free loopback port (real HTTP, real streaming)."""
    async with serve_asgi(router, host="127.0.0.1", port=0) as server:
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    router.close()


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        yield http


ENVD = {"E2b-Sandbox-Id": SANDBOX, "E2b-Sandbox-Port": "49983"}
