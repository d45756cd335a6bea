"""`filesystem.Filesystem/Remove` (unary): delete a file, symlink or directory tree.

A missing path is not an error. A symlink is removed itself, never what it points to, and
a directory tree is removed without following the symlinks inside it.
"""

from __future__ import annotations

import os
import shutil
import stat

from corral.agent.connect_server import CallContext, UnaryMethod, Wire
from corral.agent.filesystem_service.context import FilesystemService
from corral.agent.filesystem_service.os_errors import filesystem_error
from corral.protocol.filesystem_messages import PathRequest

__all__ = ["remove_method", "remove_path"]


def remove_path(path: str) -> None:
    """Delete `path` recursively; raises a `FilesystemError` (not for a missing path)."""
    try:
        info = os.lstat(path)
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise filesystem_error(exc, "remove", exc.filename or path) from exc


def remove_method(service: FilesystemService) -> UnaryMethod:
    def remove(ctx: CallContext, message: Wire) -> Wire:
        request = PathRequest.from_wire(message)
        user = service.caller(ctx)
        remove_path(service.resolve(request.path, user))
        return {}

    return UnaryMethod(remove)
