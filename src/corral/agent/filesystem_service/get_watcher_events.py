"""`filesystem.Filesystem/GetWatcherEvents` (unary): the events since the previous poll."""

from __future__ import annotations

from corral.agent.connect_server import CallContext, UnaryMethod, Wire
from corral.agent.filesystem_service.context import FilesystemService
from corral.protocol.filesystem_messages import WatcherRequest, events_response

__all__ = ["get_watcher_events_method"]


def get_watcher_events_method(service: FilesystemService) -> UnaryMethod:
    def get_watcher_events(ctx: CallContext, message: Wire) -> Wire:
        request = WatcherRequest.from_wire(message)
        service.caller(ctx)  # an unknown user is refused like everywhere else
        return events_response(service.watchers.take_events(request.watcher_id))

    return UnaryMethod(get_watcher_events)
