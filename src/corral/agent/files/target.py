"""Create the file of an upload the way envd does (protocol doc §6.3 "event counts", §7.4).

For a new file a directory watcher sees exactly CREATE, CHMOD, WRITE: `open(O_CREAT)`
(mode 0666 under umask 022 → 0644), `fchown` to the user (an attribute change), then the
content. Missing parents are made 0755 and owned by the user. Only regular files are
written: the open is non-blocking (a FIFO cannot hang the agent) and anything that is not a
regular file is refused before it is touched further.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Mapping

from corral.agent.files.errors import BadFileRequest, FilesError, from_os_error
from corral.agent.files.metadata import apply_metadata
from corral.agent.user_paths import make_directories
from corral.agent.users import User

__all__ = ["UploadTarget"]

_UMASK = 0o022
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NONBLOCK


def _make_parents(directory: str, user: User) -> None:
    try:
        make_directories(directory, user)
    except NotADirectoryError as exc:
        raise BadFileRequest(f"path '{exc.filename or directory}' is not a directory") from exc
    except OSError as exc:
        raise from_os_error(exc, exc.filename or directory) from exc


class UploadTarget:
    """One file being written by an upload; `close()` always, `finished()` on success."""

    __slots__ = ("path", "metadata", "_fd")

    def __init__(self, path: str, user: User, metadata: Mapping[str, str]) -> None:
        self.path = path
        self.metadata = metadata
        previous = os.umask(_UMASK)  # the agent is single-threaded: nothing else sees it
        try:
            _make_parents(posixpath.dirname(path), user)
            fd = os.open(path, _OPEN_FLAGS, 0o666)
        except OSError as exc:
            raise from_os_error(exc, path) from exc
        finally:
            os.umask(previous)
        self._fd = fd
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise BadFileRequest(f"path '{path}' is not a regular file")
            os.fchown(fd, user.uid, user.gid)
            apply_metadata(fd, path, metadata)
        except FilesError:
            self.close()
            raise
        except OSError as exc:
            self.close()
            raise from_os_error(exc, path) from exc

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            raise from_os_error(exc, self.path) from exc

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def finished(self) -> dict[str, object]:
        """Close and describe the file for the upload's JSON answer."""
        self.close()
        entry: dict[str, object] = {
            "path": self.path,
            "name": posixpath.basename(self.path),
            "type": "file",
        }
        if self.metadata:
            entry["metadata"] = dict(self.metadata)
        return entry
