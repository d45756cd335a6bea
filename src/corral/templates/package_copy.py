"""`COPY corral.PACKAGE DIR`: put one of corral's own packages into a layer.

What is copied: every file of the package's directory tree except `__pycache__` and compiled
files, plus the `__init__.py` of each parent package, so that `PYTHONPATH=DIR python -m
corral.PACKAGE` works inside a sandbox where the rest of corral does not exist. Files are
root-owned 0644 in 0755 directories. The digest of those files is part of the layer id, so
editing the package rebuilds the layer.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path, PurePosixPath

from corral.templates.errors import BuildError

__all__ = ["copy_package", "package_digest", "package_files"]

_SKIPPED_DIRS = frozenset({"__pycache__"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


def _package_dir(package: str) -> Path:
    try:
        spec = importlib.util.find_spec(package)
    except ModuleNotFoundError:
        spec = None
    locations = None if spec is None else spec.submodule_search_locations
    if not locations:
        raise BuildError(f"COPY: {package!r} is not a package of this corral installation")
    return Path(next(iter(locations)))


def package_files(package: str) -> list[tuple[PurePosixPath, Path]]:
    """(path relative to the destination, source file) of everything COPY writes, sorted."""
    files: list[tuple[PurePosixPath, Path]] = []
    parts = package.split(".")
    for depth in range(1, len(parts)):
        parent = ".".join(parts[:depth])
        init = _package_dir(parent) / "__init__.py"
        files.append((PurePosixPath(*parts[:depth], "__init__.py"), init))
    root = _package_dir(package)
    for source in sorted(root.rglob("*")):
        relative = source.relative_to(root)
        if any(part in _SKIPPED_DIRS for part in relative.parts):
            continue
        if source.is_file() and not source.name.endswith(_SKIPPED_SUFFIXES):
            files.append((PurePosixPath(*parts, *relative.parts), source))
    return sorted(files)


def package_digest(package: str) -> str:
    """SHA-256 over the names and contents of the files COPY writes."""
    digest = hashlib.sha256()
    for relative, source in package_files(package):
        digest.update(f"{relative}\0{source.stat().st_size}\0".encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()


def copy_package(package: str, rootfs: Path, destination: str) -> None:
    """Write the package's files under `rootfs/destination` (an empty layer staging dir)."""
    target_root = rootfs / destination.lstrip("/")
    for relative, source in package_files(package):
        target = target_root / relative
        _make_directories(rootfs, target.parent)
        target.write_bytes(source.read_bytes())
        target.chmod(0o644)


def _make_directories(rootfs: Path, directory: Path) -> None:
    """`mkdir -p` below `rootfs`, every new directory 0755 whatever the umask."""
    for path in reversed([directory, *directory.parents]):
        if rootfs in path.parents and not path.is_dir():
            path.mkdir()
            path.chmod(0o755)
