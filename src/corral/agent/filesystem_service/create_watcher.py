"""`filesystem.Filesystem/CreateWatcher` (unary): start a polled watcher, answer its id."""

from __future__ import annotations

from corral.agent.connect_server import CallContext, UnaryMethod, Wire
from corral.agent.filesystem_service.context import FilesystemService
from corral.agent.filesystem_service.directory_watch import DirectoryWatch, EventListener
from corral.agent.filesystem_service.start_watch import start_watch
from corral.protocol.filesystem_messages import WatchDirRequest

__all__ = ["create_watcher_method"]


def create_watcher_method(service: FilesystemService) -> UnaryMethod:
    def create_watcher(ctx: CallContext, message: Wire) -> Wire:
        request = WatchDirRequest.from_wire(message)
        user = service.caller(ctx)
        path = service.resolve(request.path, user)

        def start(listener: EventListener) -> DirectoryWatch:
            return start_watch(service.loop, path, request, service.users, listener)

        return {"watcherId": service.watchers.create(start)}

    return UnaryMethod(create_watcher)
