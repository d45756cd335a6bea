"""`filesystem.Filesystem/RemoveWatcher` (unary): stop a polled watcher; unknown -> not_found."""

from __future__ import annotations

from corral.agent.connect_server import CallContext, UnaryMethod, Wire
from corral.agent.filesystem_service.context import FilesystemService
from corral.protocol.filesystem_messages import WatcherRequest

__all__ = ["remove_watcher_method"]


def remove_watcher_method(service: FilesystemService) -> UnaryMethod:
    def remove_watcher(ctx: CallContext, message: Wire) -> Wire:
        request = WatcherRequest.from_wire(message)
        service.caller(ctx)
        service.watchers.remove(request.watcher_id)
        return {}

    return UnaryMethod(remove_watcher)
