"""The envd `filesystem.Filesystem` service: one module per RPC (protocol doc §6).

Every call runs inside the sandbox (the agent is its pid 1, after `pivot_root`), as the
sandbox's root, for the user named by Basic auth: relative paths are under that user's
HOME and what the call creates is owned by that user. Support modules: `paths` and
`directories` (the RPC edges of `corral.agent.user_paths`, shared with `/files`),
`entry_info` (`EntryInfo`; owner names come from `corral.agent.users`), `os_errors` (errno
-> Connect code), `directory_watch` (inotify -> events), `start_watch`, `watchers` (polled
watchers), `network_mounts`, `_linux/inotify`.
"""

from __future__ import annotations

from corral.agent.connect_server import Method
from corral.agent.filesystem_service.context import FilesystemService
from corral.agent.filesystem_service.create_watcher import create_watcher_method
from corral.agent.filesystem_service.get_watcher_events import get_watcher_events_method
from corral.agent.filesystem_service.list_dir import list_dir_method
from corral.agent.filesystem_service.make_dir import make_dir_method
from corral.agent.filesystem_service.move import move_method
from corral.agent.filesystem_service.remove import remove_method
from corral.agent.filesystem_service.remove_watcher import remove_watcher_method
from corral.agent.filesystem_service.stat_path import stat_method
from corral.agent.filesystem_service.watch_dir import watch_dir_method
from corral.agent.filesystem_service.watchers import WatcherRegistry

__all__ = ["FilesystemService", "WatcherRegistry", "filesystem_methods"]


def filesystem_methods(service: FilesystemService) -> dict[str, Method]:
    """RPC path -> method, for every `filesystem.Filesystem` call."""
    return {
        "/filesystem.Filesystem/Stat": stat_method(service),
        "/filesystem.Filesystem/MakeDir": make_dir_method(service),
        "/filesystem.Filesystem/Move": move_method(service),
        "/filesystem.Filesystem/ListDir": list_dir_method(service),
        "/filesystem.Filesystem/Remove": remove_method(service),
        "/filesystem.Filesystem/WatchDir": watch_dir_method(service),
        "/filesystem.Filesystem/CreateWatcher": create_watcher_method(service),
        "/filesystem.Filesystem/GetWatcherEvents": get_watcher_events_method(service),
        "/filesystem.Filesystem/RemoveWatcher": remove_watcher_method(service),
    }
