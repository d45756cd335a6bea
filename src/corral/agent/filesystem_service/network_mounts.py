"""Is a path on a network filesystem? (`WatchDir` refuses those unless asked, §6.3.)

inotify sees only local changes on NFS, CIFS/SMB and FUSE mounts, so envd refuses to watch
them by default. The mount holding the path is the longest mount point in
`/proc/self/mountinfo` that contains it.
"""

from __future__ import annotations

__all__ = ["is_network_mount"]

_NETWORK_TYPES = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse", "fuseblk"})
_MOUNTINFO = "/proc/self/mountinfo"


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as `\\ooo`."""
    if "\\" not in field:
        return field
    raw, out, index = field.encode(), bytearray(), 0
    while index < len(raw):
        code = raw[index + 1 : index + 4]
        if raw[index] == 0x5C and len(code) == 3 and code.isdigit():
            out.append(int(code, 8) & 0xFF)
            index += 4
        else:
            out.append(raw[index])
            index += 1
    return out.decode("utf-8", "replace")


def _is_network_type(fs_type: str) -> bool:
    return fs_type in _NETWORK_TYPES or fs_type.startswith("fuse.")


def is_network_mount(real_path: str, mountinfo: str = _MOUNTINFO) -> bool:
    """Whether the mount containing `real_path` (symlinks resolved) is a network one."""
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return False
    best, best_type = "", ""
    for line in lines:
        fields = line.split(" ")
        if len(fields) < 10 or "-" not in fields:
            continue
        mount_point = _unescape(fields[4])
        fs_type = fields[fields.index("-", 6) + 1]
        inside = (
            real_path == mount_point
            or mount_point == "/"
            or real_path.startswith(mount_point.rstrip("/") + "/")
        )
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, fs_type
    return _is_network_type(best_type)
