"""Template manifests (`<templates_dir>/<name>.json`) and looking templates up by name.

A manifest names the template's layers bottom first and its sandbox defaults::

    {"name": "base", "layers": ["<layer-id>", ...], "user": "user",
     "workdir": "/home/user", "env": {}, "created_at": "2025-01-01T00:00:00Z",
     "limits": "cpu=1 memory=512",
     "start": {"command": "...", "ready_port": 49999}}

`limits` (optional; the text of a recipe's `LIMITS` line) holds the template's default
resource limits; absent keys are the server's. `start` (optional) is the recipe's `START`
command and `READY` port.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from corral.model import LimitOverrides, TemplateRef, parse_limit_overrides
from corral.templates.atomic_file import write_json_atomically
from corral.templates.errors import TemplateCorrupt, TemplateNotFound
from corral.templates.layers import LayerStore, valid_layer_id
from corral.templates.recipe import StartCommand, valid_template_name

__all__ = [
    "TemplateManifest",
    "list_templates",
    "load_template",
    "read_manifest",
    "utc_timestamp",
    "write_manifest",
]


def utc_timestamp(when: float) -> str:
    """RFC 3339 UTC time with second precision, as E2B's `createdAt` fields use."""
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class TemplateManifest:
    """A built template: its layer ids (bottom first) and the defaults of its sandboxes."""

    name: str
    layers: tuple[str, ...]
    user: str = "user"
    workdir: str = "/home/user"
    env: Mapping[str, str] = field(default_factory=dict)
    created_at: str = ""
    limits: LimitOverrides = LimitOverrides()
    start: StartCommand | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "layers": list(self.layers),
            "user": self.user,
            "workdir": self.workdir,
            "env": dict(self.env),
            "created_at": self.created_at,
        }
        if self.limits != LimitOverrides():
            body["limits"] = self.limits.to_text()
        if self.start is not None:
            body["start"] = {"command": self.start.command, "ready_port": self.start.ready_port}
        return body

    @classmethod
    def from_json(cls, raw: Any) -> TemplateManifest:
        """Parse and validate; raise `ValueError`/`KeyError`/`TypeError` if malformed."""
        if not isinstance(raw, dict):
            raise TypeError("a manifest is a JSON object")
        layers = raw["layers"]
        env = raw.get("env", {})
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise TypeError("'layers' must be a list of layer ids")
        if not isinstance(env, dict):
            raise TypeError("'env' must be an object")
        bad = [layer for layer in layers if not valid_layer_id(layer)]
        if bad:
            raise ValueError(f"invalid layer ids: {bad}")
        start = raw.get("start")
        if start is not None and not isinstance(start, dict):
            raise TypeError("'start' must be an object")
        return cls(
            name=str(raw["name"]),
            layers=tuple(layers),
            user=str(raw.get("user", "user")),
            workdir=str(raw.get("workdir", "/home/user")),
            env={str(k): str(v) for k, v in env.items()},
            created_at=str(raw.get("created_at", "")),
            limits=parse_limit_overrides(str(raw.get("limits", ""))),
            start=(
                None
                if start is None
                else StartCommand(str(start["command"]), int(start.get("ready_port", 0)))
            ),
        )

    def to_ref(self, templates_dir: Path) -> TemplateRef:
        """The runtime's view: absolute layer paths, bottom first."""
        store = LayerStore(templates_dir.absolute())
        return TemplateRef(
            template_id=self.name,
            layers=tuple(str(store.path(layer)) for layer in self.layers),
            default_user=self.user,
            default_workdir=self.workdir,
            alias=self.name,
            limits=self.limits,
            env=dict(self.env),
            start_command=None if self.start is None else self.start.command,
            ready_port=0 if self.start is None else self.start.ready_port,
        )


def _manifest_path(templates_dir: Path, name: str) -> Path:
    if not valid_template_name(name):
        raise TemplateNotFound(name)
    return Path(templates_dir) / f"{name}.json"


def read_manifest(templates_dir: Path | str, name: str) -> TemplateManifest:
    """The manifest of template `name` (layers not checked)."""
    path = _manifest_path(Path(templates_dir), name)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise TemplateNotFound(name) from exc
    except OSError as exc:
        raise TemplateCorrupt(f"template {name!r}: cannot read its manifest") from exc
    try:
        manifest = TemplateManifest.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise TemplateCorrupt(f"template {name!r}: malformed manifest ({exc})") from exc
    if manifest.name != name:
        raise TemplateCorrupt(f"template {name!r}: manifest names {manifest.name!r}")
    if not manifest.layers:
        raise TemplateCorrupt(f"template {name!r}: manifest lists no layers")
    return manifest


def load_template(templates_dir: Path | str, name: str) -> TemplateRef:
    """The built template `name`, ready for the runtime; every layer is checked to exist.

    Raises `TemplateNotFound` (no such template, or an invalid name) or `TemplateCorrupt`.
    """
    root = Path(templates_dir)
    manifest = read_manifest(root, name)
    store = LayerStore(root)
    missing = [layer for layer in manifest.layers if not store.has(layer)]
    if missing:
        raise TemplateCorrupt(f"template {name!r}: missing layers {', '.join(missing)}")
    return manifest.to_ref(root)


def list_templates(templates_dir: Path | str) -> list[TemplateManifest]:
    """Manifests of every template in `templates_dir`, by name; unreadable ones are skipped."""
    root = Path(templates_dir)
    if not root.is_dir():
        return []
    manifests: list[TemplateManifest] = []
    for path in sorted(root.glob("*.json")):
        name = path.name.removesuffix(".json")
        if not valid_template_name(name):
            continue
        try:
            manifests.append(read_manifest(root, name))
        except (TemplateNotFound, TemplateCorrupt):
            continue
    return manifests


def write_manifest(templates_dir: Path | str, manifest: TemplateManifest) -> Path:
    """Store `manifest` atomically as `<templates_dir>/<name>.json`."""
    path = _manifest_path(Path(templates_dir), manifest.name)
    write_json_atomically(path, manifest.to_json())
    return path
