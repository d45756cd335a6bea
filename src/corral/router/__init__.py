"""The data plane: E2B SDK traffic for a sandbox, forwarded byte-for-byte to its agent.

Imports `model`, `protocol` and `store` at most (today: nothing from corral); the sandbox
directory is a `Protocol` that the orchestrator satisfies structurally.

Hot path per request: one dict lookup for the sandbox, the request head rebuilt from the ASGI
scope, a pooled keep-alive unix-socket connection to the agent, and an `httptools` response
parser; bodies stream in both directions without buffering.

Choice of proxy (measured on this machine, 2 vCPU; client = sync httpx over TCP, 3000
sequential requests after warm-up; agent = uvicorn/httptools stand-in on a unix socket):

| path                                   | GET /health p50 | POST 7-byte JSON p50 |
|----------------------------------------|-----------------|----------------------|
| client -> agent directly (TCP)         | ~400 us         | ~450-520 us          |
| via this router (asyncio + httptools)  | ~530 us         | ~700-850 us          |
| via httpx.AsyncClient + UDS transport  | ~1600-1800 us   | ~1500 us             |

The hand-rolled proxy adds ~0.15-0.3 ms per request (that includes the second HTTP parse
by uvicorn in front of it); the httpx variant adds ~1.1-1.4 ms and buffers more. It also
lets us abort a client connection mid-stream, which httpx-based forwarding hides.

Error semantics (protocol doc §2, §4.8): unknown or dead sandbox -> 502 "was not found";
agent unreachable while the sandbox is listed, or nothing listening on a preview port ->
502 "port is not open"; a preview request without the sandbox's required traffic token ->
403; agent lost mid-response -> the client connection is aborted (no final chunk).

Preview URLs (`preview`, `tunnel`, `websocket`): a port other than 49983, named by
`E2b-Sandbox-Port` or by a Host `{port}-{sandboxId}.{domain}`, is reached through a tunnel
the sandbox's agent opens to `127.0.0.1:<port>` inside it; see `docs/preview-urls.md`.
"""

from corral.router.directory import RoutableSandbox, SandboxDirectory
from corral.router.pool import AgentPool
from corral.router.router import ENVD_PORT, DataPlaneRouter
from corral.router.signed_urls import compute_signature

__all__ = [
    "ENVD_PORT",
    "AgentPool",
    "DataPlaneRouter",
    "RoutableSandbox",
    "SandboxDirectory",
    "compute_signature",
]
