"""`filesystem.Filesystem/Move` (unary): rename a path, creating missing destination parents.

The answer describes the destination. Missing parents of the destination are created like
`MakeDir` does (0755, owned by the user). `rename(2)` is tried first; across filesystems
(EXDEV, which overlayfs also returns for directories of a lower layer) the tree is copied
with its metadata, symlinks as symlinks, and the source removed, like `mv` does. As with
`rename(2)`, an existing file at the destination is replaced, an existing non-empty
directory is `already_exists`.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat

from corral.agent.connect_server import CallContext, UnaryMethod, Wire
from corral.agent.errors import PathExists
from corral.agent.filesystem_service.context import FilesystemService
from corral.agent.filesystem_service.directories import ensure_directory
from corral.agent.filesystem_service.entry_info import describe_path
from corral.agent.filesystem_service.os_errors import filesystem_error
from corral.agent.filesystem_service.remove import remove_path
from corral.protocol.filesystem_messages import MoveRequest

__all__ = ["move_method"]


def _copy_across(source: str, destination: str) -> None:
    """What `mv` does when `rename` reports EXDEV."""
    source_mode = os.lstat(source).st_mode
    try:
        existing = os.lstat(destination).st_mode
    except FileNotFoundError:
        existing = None
    if existing is not None:
        if stat.S_ISDIR(existing):
            if os.listdir(destination):
                raise PathExists(f"cannot move to '{destination}': directory not empty")
            if not stat.S_ISDIR(source_mode):
                raise IsADirectoryError(errno.EISDIR, "Is a directory", destination)
            os.rmdir(destination)
        elif stat.S_ISDIR(source_mode):
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", destination)
        else:
            os.unlink(destination)
    if stat.S_ISDIR(source_mode):
        shutil.copytree(source, destination, symlinks=True)
    else:
        shutil.copy2(source, destination, follow_symlinks=False)
    remove_path(source)


def move_method(service: FilesystemService) -> UnaryMethod:
    def move(ctx: CallContext, message: Wire) -> Wire:
        request = MoveRequest.from_wire(message)
        user = service.caller(ctx)
        source = service.resolve(request.source, user)
        destination = service.resolve(request.destination, user)
        try:
            os.lstat(source)
        except OSError as exc:
            raise filesystem_error(exc, "move", source) from exc
        ensure_directory(os.path.dirname(destination), user)
        try:
            try:
                os.rename(source, destination)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                _copy_across(source, destination)
        except OSError as exc:
            raise filesystem_error(exc, "move", exc.filename or source) from exc
        return {"entry": describe_path(destination, service.users).to_wire()}

    return UnaryMethod(move)
