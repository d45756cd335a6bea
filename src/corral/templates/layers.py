"""Content-addressed, read-only rootfs layers on disk.

Layout under the templates dir::

    layers/<id>/          the layer's files (a complete rootfs, or an overlay upper dir
                          with whiteouts); present only once the layer is complete
    layers/<id>.json      what made the layer (`LayerInfo`)
    layers/.replaced/     layers displaced by `--force` rebuilds (may still be mounted)
    .build/<random>/      staging areas of builds in progress (or of crashed builds)

A layer is committed by renaming its finished staging dir to `layers/<id>`; rename is atomic,
so a crash never leaves a half layer under a layer's name.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corral.templates.atomic_file import write_json_atomically

__all__ = [
    "LayerInfo",
    "LayerStore",
    "StagingArea",
    "layer_id",
    "tree_size",
    "valid_layer_id",
]

_LAYER_ID = re.compile(r"^[0-9a-f]{24}$")
_ID_SCHEME = "corral-layer-v1"


def layer_id(parent: str | None, step_text: str) -> str:
    """The id of the layer that `step_text` makes on top of layer `parent` (None: bottom)."""
    digest = hashlib.sha256(f"{_ID_SCHEME}\0{parent or ''}\0{step_text}".encode())
    return digest.hexdigest()[:24]


def valid_layer_id(value: str) -> bool:
    """Whether `value` has the shape of an id made by `layer_id`."""
    return bool(_LAYER_ID.match(value))


@dataclass(frozen=True)
class LayerInfo:
    """What made a layer; stored beside it as `layers/<id>.json`."""

    layer_id: str
    parent: str | None
    step: str
    created_at: float
    build_seconds: float
    size_bytes: int
    packages: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.layer_id,
            "parent": self.parent,
            "step": self.step,
            "created_at": self.created_at,
            "build_seconds": round(self.build_seconds, 3),
            "size_bytes": self.size_bytes,
            "packages": dict(sorted(self.packages.items())),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> LayerInfo:
        return cls(
            layer_id=str(raw["id"]),
            parent=None if raw.get("parent") is None else str(raw["parent"]),
            step=str(raw["step"]),
            created_at=float(raw["created_at"]),
            build_seconds=float(raw.get("build_seconds", 0.0)),
            size_bytes=int(raw.get("size_bytes", 0)),
            packages={str(k): str(v) for k, v in raw.get("packages", {}).items()},
        )


def tree_size(root: Path) -> int:
    """Bytes allocated on disk by the files under `root` (hard links counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for directory, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            stat = os.lstat(os.path.join(directory, name))
            key = (stat.st_dev, stat.st_ino)
            if key not in seen:
                seen.add(key)
                total += stat.st_blocks * 512
    return total


def _mount_points() -> list[str]:
    """Mount points of this process's mount namespace (octal escapes decoded)."""
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as handle:
        fields = [line.split(" ", 5)[4] for line in handle if line.strip()]
    return [re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), f) for f in fields]


def _remove_unmounted(path: Path) -> None:
    """`rm -rf path`, refusing if anything is mounted below it (never delete through a mount)."""
    prefix = str(path.resolve()) + "/"
    busy = [point for point in _mount_points() if point.startswith(prefix)]
    if busy:
        raise OSError(f"refusing to remove {path}: still mounted: {', '.join(busy)}")
    shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class StagingArea:
    """A private scratch directory for one step; `rootfs` becomes the layer if committed."""

    path: Path

    @property
    def rootfs(self) -> Path:
        return self.path / "rootfs"


class LayerStore:
    """The `layers/` directory of one templates dir."""

    def __init__(self, templates_dir: Path) -> None:
        self.templates_dir = templates_dir
        self.root = templates_dir / "layers"
        self.staging_root = templates_dir / ".build"
        self.replaced_root = self.root / ".replaced"

    def path(self, layer: str) -> Path:
        """Where layer `layer` lives (whether or not it exists)."""
        if not valid_layer_id(layer):
            raise ValueError(f"not a layer id: {layer!r}")
        return self.root / layer

    def has(self, layer: str) -> bool:
        """Whether layer `layer` is complete on disk."""
        return self.path(layer).is_dir()

    def info(self, layer: str) -> LayerInfo | None:
        """The stored `LayerInfo` of `layer`, or None if it is missing or unreadable."""
        try:
            raw = json.loads((self.root / f"{layer}.json").read_text(encoding="utf-8"))
            return LayerInfo.from_json(raw)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @contextmanager
    def staging(self) -> Iterator[StagingArea]:
        """A fresh staging area, removed on exit (after a commit it holds only leftovers)."""
        self.staging_root.mkdir(parents=True, exist_ok=True)
        area = StagingArea(self.staging_root / secrets.token_hex(8))
        area.path.mkdir(mode=0o700)
        area.rootfs.mkdir()
        os.chmod(area.rootfs, 0o755)
        try:
            yield area
        finally:
            _remove_unmounted(area.path)

    def commit(self, area: StagingArea, info: LayerInfo) -> Path:
        """Make `area.rootfs` the layer `info.layer_id`, atomically.

        A layer already under that id (a `--force` rebuild) is moved to `layers/.replaced/`
        rather than deleted, because running sandboxes may still have it mounted.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.path(info.layer_id)
        write_json_atomically(self.root / f"{info.layer_id}.json", info.to_json())
        if os.path.lexists(target):
            self.replaced_root.mkdir(exist_ok=True)
            os.rename(target, self.replaced_root / f"{info.layer_id}-{time.time_ns()}")
        os.rename(area.rootfs, target)
        return target

    def sweep_staging(self) -> list[Path]:
        """Remove staging areas left by crashed builds. Call only while holding the build lock."""
        removed: list[Path] = []
        if self.staging_root.is_dir():
            for leftover in sorted(self.staging_root.iterdir()):
                _remove_unmounted(leftover)
                removed.append(leftover)
        return removed

    def prune(self, keep: set[str]) -> list[Path]:
        """Delete replaced layers and every layer not in `keep`. Only safe with no sandboxes."""
        removed: list[Path] = []
        if self.replaced_root.is_dir():
            shutil.rmtree(self.replaced_root)
            removed.append(self.replaced_root)
        if self.root.is_dir():
            for entry in sorted(self.root.iterdir()):
                name = entry.name.removesuffix(".json")
                if valid_layer_id(name) and name not in keep:
                    if entry.is_dir():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()
                    removed.append(entry)
        return removed
