"""Overlay metadata in committed layers, made readable by overlay mounts of both kinds.

A RUN step's layer is an overlay upper dir: deleted files are whiteouts (char devices 0/0)
and replaced directories carry the `trusted.overlay.opaque` xattr. The whiteouts are
understood by every overlay mount, but an overlay mounted inside a user namespace
(`userxattr`) reads `user.overlay.opaque` instead; so each opaque marker is written in both
namespaces. The layers are only ever used as overlay lower layers, never read directly.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["mirror_opaque_markers"]

_TRUSTED_OPAQUE = "trusted.overlay.opaque"
_USER_OPAQUE = "user.overlay.opaque"


def mirror_opaque_markers(root: Path) -> int:
    """Copy every `trusted.overlay.opaque` marker under `root` to `user.overlay.opaque`.

    Returns the number of directories marked. Symlinks are never followed.
    """
    marked = 0
    for directory, _dirnames, _filenames in os.walk(root):
        try:
            value = os.getxattr(directory, _TRUSTED_OPAQUE, follow_symlinks=False)
        except OSError:
            continue
        os.setxattr(directory, _USER_OPAQUE, value, follow_symlinks=False)
        marked += 1
    return marked
