"""Bytes a directory tree takes on disk (allocated blocks, hard links counted once).

For a tree whose owner may be hostile (a sandbox's writable layer) while it is walked: every
directory is opened relative to its parent's file descriptor with `O_NOFOLLOW`, so swapping
a directory for a symlink mid-walk cannot lead the walk out of the tree, and the walk never
leaves the tree's file system. Entries that vanish meanwhile are skipped. It reads the whole
tree (down to `MAX_DEPTH` levels), so call it from a worker thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import os
import stat

__all__ = ["MAX_DEPTH", "tree_bytes"]

MAX_DEPTH = 256
"""Directories nested deeper are not counted (one open descriptor per level)."""

_BLOCK = 512  # st_blocks is always in 512-byte units
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def tree_bytes(root: str) -> int:
    """Allocated bytes of `root` and everything below it; 0 if `root` does not exist."""
    try:
        top = os.lstat(root)
    except OSError:
        return 0
    if not stat.S_ISDIR(top.st_mode):
        return top.st_blocks * _BLOCK
    try:
        fd = os.open(root, _OPEN_DIR)
    except OSError:
        return 0
    total = top.st_blocks * _BLOCK
    seen: set[int] = set()
    # Depth-first; the stack holds each open directory and the subdirectories still to visit.
    first_bytes, first_subdirs = _scan(fd, top.st_dev, seen)
    total += first_bytes
    stack = [(fd, iter(first_subdirs))]
    try:
        while stack:
            parent, pending = stack[-1]
            name = next(pending, None)
            if name is None:
                os.close(stack.pop()[0])
                continue
            if len(stack) >= MAX_DEPTH:
                continue
            try:
                child = os.open(name, _OPEN_DIR, dir_fd=parent)
            except OSError:
                continue  # gone, or replaced by a symlink
            child_bytes, child_subdirs = _scan(child, top.st_dev, seen)
            total += child_bytes
            stack.append((child, iter(child_subdirs)))
    finally:
        for open_fd, _ in stack:
            os.close(open_fd)
    return total


def _scan(fd: int, device: int, seen: set[int]) -> tuple[int, list[str]]:
    """Bytes of the entries of the open directory `fd`, and its subdirectories' names."""
    total = 0
    subdirs: list[str] = []
    try:
        entries = os.scandir(fd)
    except OSError:
        return 0, []
    with entries:
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if info.st_dev != device:
                continue
            if stat.S_ISDIR(info.st_mode):
                subdirs.append(entry.name)
            elif info.st_nlink > 1:
                if info.st_ino in seen:
                    continue
                seen.add(info.st_ino)
            total += info.st_blocks * _BLOCK
    return total, subdirs
