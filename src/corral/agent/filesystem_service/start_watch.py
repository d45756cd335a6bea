"""Validate a `WatchDir`/`CreateWatcher` request and start its watch (§6.3).

The path must exist (`not_found`), be a directory, possibly through symlinks
(`invalid_argument`), and not be on a network filesystem unless `allowNetworkMounts`
(`invalid_argument`).
"""

from __future__ import annotations

import asyncio
import os
import stat

from corral.agent.errors import InvalidPath
from corral.agent.filesystem_service.directory_watch import DirectoryWatch, EventListener
from corral.agent.filesystem_service.network_mounts import is_network_mount
from corral.agent.filesystem_service.os_errors import filesystem_error
from corral.agent.users import UserDatabase
from corral.protocol.filesystem_messages import WatchDirRequest

__all__ = ["start_watch"]


def start_watch(
    loop: asyncio.AbstractEventLoop,
    path: str,
    request: WatchDirRequest,
    users: UserDatabase,
    listener: EventListener,
) -> DirectoryWatch:
    """A running watch of `path` (resolved, as requested); raises a `FilesystemError`."""
    try:
        real = os.path.realpath(path, strict=True)
        mode = os.stat(real).st_mode
    except OSError as exc:
        raise filesystem_error(exc, "watch", path) from exc
    if not stat.S_ISDIR(mode):
        raise InvalidPath(f"path '{path}' is not a directory")
    if not request.allow_network_mounts and is_network_mount(real):
        raise InvalidPath(
            f"path '{path}' is on a network mount; set allow_network_mounts to watch it"
        )
    watch = DirectoryWatch(
        loop,
        path,
        recursive=request.recursive,
        include_entry=request.include_entry,
        users=users,
        listener=listener,
    )
    watch.start()
    return watch
