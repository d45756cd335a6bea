"""The agent's HTTP surface: which path goes where, and the access-token rule.

    GET  /health                  204, always open (the SDK's liveness probe)
    GET|POST /files               download / upload (`corral.agent.files`): token or signature
    GET  /envs                    200 JSON of the sandbox-wide environment variables
    GET  /ready?timeout=S         200 once the template's start command listens on its ready
                                  port; 503 JSON saying why it never will (Corral's, for create)
    POST /process.Process/<rpc>   the process service (Connect RPC)
    POST /filesystem.Filesystem/<rpc>  the filesystem service (Connect RPC)
    POST /<pkg>.<Service>/<rpc>   any other RPC: Connect `unimplemented`
    CONNECT 127.0.0.1:<port>      a byte tunnel to that port in the sandbox (`agent.tunnel`)
    anything else                 404 JSON

With an access token configured, everything but `GET /health` and `/files` needs
`X-Access-Token` (protocol doc §7.6), else 401 JSON; `/files` checks its own access (it
also accepts signed links).
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Mapping

from corral.agent.auth import UNAUTHORIZED_MESSAGE, access_token_matches
from corral.agent.connect_server import Method, open_call, reject_unknown_procedure
from corral.agent.files import FileTransfers
from corral.agent.http_server import IGNORE_BODY, RequestHandler, RequestHead, Response
from corral.agent.start_command import StartCommand
from corral.agent.tunnel import open_tunnel
from corral.protocol.agent_config import AgentConfig

__all__ = ["AgentApp"]

_JSON_UTF8 = "application/json; charset=utf-8"
_READY_TIMEOUT = 120.0


def _error_body(status: int, message: str) -> bytes:
    return json.dumps({"code": status, "message": message}, separators=(",", ":")).encode()


def _is_rpc_path(path: str) -> bool:
    """`/<package>.<Service>/<Method>`."""
    parts = path.split("/")
    return len(parts) == 3 and not parts[0] and "." in parts[1] and bool(parts[2])


class AgentApp:
    """Routes requests to the agent's endpoints (an `http_server.Application`)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        config: AgentConfig,
        methods: Mapping[str, Method],
        files: FileTransfers,
        start_command: StartCommand,
    ) -> None:
        self._loop = loop
        self._files = files
        self._start_command = start_command
        self._tasks: set[asyncio.Task[None]] = set()
        self._token = config.access_token
        self._methods = dict(methods)
        self._envs_body = json.dumps(dict(config.env_vars), separators=(",", ":")).encode()
        self._unauthorized = _error_body(401, UNAUTHORIZED_MESSAGE)

    def open_request(self, head: RequestHead, response: Response) -> RequestHandler:
        path = head.path
        if path == "/health" and head.method == "GET":
            response.send(204)
            return IGNORE_BODY
        if path == "/files":
            return self._files.open_request(head, response)
        if self._token and not access_token_matches(head.header("x-access-token"), self._token):
            response.send(401, self._unauthorized, _JSON_UTF8)
            return IGNORE_BODY
        method = self._methods.get(path)
        if method is not None:
            return open_call(self._loop, head, response, method)
        if head.method == "CONNECT":
            return open_tunnel(head, response)
        if path == "/envs" and head.method == "GET":
            response.send(200, self._envs_body, "application/json")
        elif path == "/ready" and head.method == "GET":
            task = self._loop.create_task(self._answer_ready(head, response))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif path in ("/envs", "/health", "/ready"):
            response.send(405, _error_body(405, "method not allowed"), _JSON_UTF8, {"allow": "GET"})
        elif _is_rpc_path(path):
            return reject_unknown_procedure(head, response)
        else:
            response.send(404, _error_body(404, f"path '{path}' not found"), _JSON_UTF8)
        return IGNORE_BODY

    async def _answer_ready(self, head: RequestHead, response: Response) -> None:
        try:
            asked = urllib.parse.parse_qs(head.query).get("timeout", [""])[0]
            timeout = min(float(asked or _READY_TIMEOUT), _READY_TIMEOUT)
            if not timeout >= 0:  # negative or NaN
                raise ValueError(asked)
        except ValueError:
            response.send(400, _error_body(400, "timeout must be a number of seconds"), _JSON_UTF8)
            return
        failure = await self._start_command.wait_ready(timeout)
        if failure is None:
            response.send(200, b"{}", "application/json")
        else:
            response.send(503, _error_body(503, failure), _JSON_UTF8)
