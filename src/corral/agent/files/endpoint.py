"""`FileTransfers`: the `/files` endpoint — access, user, path, then download or upload."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from corral.agent.errors import UnknownUser
from corral.agent.files.access import authorize
from corral.agent.files.answers import send_error
from corral.agent.files.download import Download, open_download, wants_gzip
from corral.agent.files.errors import FileAccessDenied, FilesError, MethodNotAllowed
from corral.agent.files.metadata import metadata_from_headers
from corral.agent.files.request import FilesQuery, resolve_path
from corral.agent.files.target import UploadTarget
from corral.agent.files.upload import UploadHandler, content_decoder, open_sink
from corral.agent.http_server import IGNORE_BODY, RequestHandler, RequestHead, Response
from corral.agent.users import User, UserDatabase
from corral.protocol.agent_config import AgentConfig

__all__ = ["FileTransfers"]


class FileTransfers:
    """Answers `GET /files` (download) and `POST /files` (upload) for the agent's router."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        config: AgentConfig,
        users: UserDatabase,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._loop = loop
        self._token = config.access_token
        self._default_user = config.default_user
        self._users = users
        self._clock = clock

    def open_request(self, head: RequestHead, response: Response) -> RequestHandler:
        try:
            return self._open(head, response)
        except FilesError as exc:
            send_error(response, exc)
            return IGNORE_BODY

    def _open(self, head: RequestHead, response: Response) -> RequestHandler:
        if head.method not in ("GET", "POST"):
            raise MethodNotAllowed(f"method {head.method} is not allowed on /files")
        query = FilesQuery.parse(head.query)
        authorize(head.method, query, head.header("x-access-token"), self._token, self._clock())
        try:
            user = self._users.lookup(query.username or self._default_user)
        except UnknownUser as exc:
            raise FileAccessDenied(str(exc)) from None
        if head.method == "GET":
            path = resolve_path(query.path or "", user)
            compress = wants_gzip(head.header("accept-encoding"))
            return Download(self._loop, response, open_download(path), path, compress)
        return self._upload(head, response, query, user)

    def _upload(
        self, head: RequestHead, response: Response, query: FilesQuery, user: User
    ) -> RequestHandler:
        metadata = metadata_from_headers(head.headers)
        decoder = content_decoder(head)

        def resolve(raw: str) -> str:
            return resolve_path(raw, user)

        def open_target(path: str) -> UploadTarget:
            return UploadTarget(path, user, metadata)

        sink = open_sink(head, query.path, resolve, open_target)
        return UploadHandler(response, sink, decoder)
