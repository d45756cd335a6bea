"""`filesystem.Filesystem/Stat` (unary): the `EntryInfo` of one path; missing -> not_found."""

from __future__ import annotations

from corral.agent.connect_server import CallContext, UnaryMethod, Wire
from corral.agent.filesystem_service.context import FilesystemService
from corral.agent.filesystem_service.entry_info import describe_path
from corral.protocol.filesystem_messages import PathRequest

__all__ = ["stat_method"]


def stat_method(service: FilesystemService) -> UnaryMethod:
    def stat_path(ctx: CallContext, message: Wire) -> Wire:
        request = PathRequest.from_wire(message)
        user = service.caller(ctx)
        path = service.resolve(request.path, user)
        return {"entry": describe_path(path, service.users).to_wire()}

    return UnaryMethod(stat_path)
