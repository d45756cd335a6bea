"""`filesystem.Filesystem/MakeDir` (unary): create a directory and its missing parents.

Each created directory is mode 0755 and owned by the calling user. An existing directory
(also through a symlink) is `already_exists` (the SDK then returns False); an existing
non-directory is `invalid_argument`.
"""

from __future__ import annotations

import os
import stat

from corral.agent.connect_server import CallContext, UnaryMethod, Wire
from corral.agent.errors import InvalidPath, PathExists
from corral.agent.filesystem_service.context import FilesystemService
from corral.agent.filesystem_service.directories import ensure_directory
from corral.agent.filesystem_service.entry_info import describe_path
from corral.agent.filesystem_service.os_errors import filesystem_error
from corral.protocol.filesystem_messages import PathRequest

__all__ = ["make_dir_method"]


def make_dir_method(service: FilesystemService) -> UnaryMethod:
    def make_dir(ctx: CallContext, message: Wire) -> Wire:
        request = PathRequest.from_wire(message)
        user = service.caller(ctx)
        path = service.resolve(request.path, user)
        try:
            info = os.stat(path)
        except FileNotFoundError:
            ensure_directory(path, user)
            return {"entry": describe_path(path, service.users).to_wire()}
        except OSError as exc:
            raise filesystem_error(exc, "create directory", path) from exc
        if stat.S_ISDIR(info.st_mode):
            raise PathExists(f"directory '{path}' already exists")
        raise InvalidPath(f"path '{path}' already exists and is not a directory")

    return UnaryMethod(make_dir)
