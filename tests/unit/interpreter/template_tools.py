"""Where the built `code-interpreter-v1` template keeps its venv python and Deno on this host.

Both run on the host, so tests use them directly. `CORRAL_INTERPRETER_PYTHON` and
`CORRAL_INTERPRETER_DENO_DIR` point elsewhere; None means the template is not built.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

TEMPLATES = Path("/var/lib/corral/templates")


def template_file(relative: str) -> Path | None:
    """The topmost layer's copy of `relative` (a path inside the template), if any."""
    try:
        manifest = json.loads((TEMPLATES / "code-interpreter-v1.json").read_text())
    except (OSError, ValueError):
        return None
    for layer in reversed(manifest.get("layers", [])):
        candidate = TEMPLATES / "layers" / layer / relative
        if candidate.exists():
            return candidate
    return None


def interpreter_python() -> str | None:
    """The template's venv python (`/opt/corral/python/bin/python`)."""
    configured = os.environ.get("CORRAL_INTERPRETER_PYTHON")
    if configured:
        return configured
    found = template_file("opt/corral/python/bin/python")
    return str(found) if found else None


def deno_dir() -> str | None:
    """The directory holding `deno` (the template's, else the one on PATH)."""
    configured = os.environ.get("CORRAL_INTERPRETER_DENO_DIR")
    if configured:
        return configured
    found = template_file("usr/local/bin/deno")
    if found:
        return str(found.parent)
    on_path = shutil.which("deno")
    return os.path.dirname(on_path) if on_path else None
