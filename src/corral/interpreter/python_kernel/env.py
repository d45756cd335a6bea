"""Per-execution env vars inside the python kernel (called by the server's silent executions).

`apply(new)` remembers the current values of those names and sets the new ones;
`restore()` puts the remembered values back and removes the names that were unset. The
server calls them around one execution (see `corral.interpreter.env_code`); executions of
a context never overlap, so one saved set is enough.
"""

from __future__ import annotations

import os

__all__ = ["apply", "restore"]

_saved: dict[str, str | None] = {}


def apply(new: dict[str, str]) -> None:
    """Set `new` in `os.environ`, remembering what it replaces."""
    restore()
    _saved.update({name: os.environ.get(name) for name in new})
    os.environ.update(new)


def restore() -> None:
    """Undo the last `apply`."""
    for name, value in _saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _saved.clear()
