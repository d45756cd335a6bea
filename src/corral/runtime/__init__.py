"""Isolation backends behind one `Runtime` protocol. Imports `model` (and `protocol`).

Error hierarchy::

    RuntimeError_            base of everything a backend raises
    ├── SandboxStartError    the sandbox could not be brought up (nothing is left behind)
    └── LauncherUnavailable  the privileged launcher process died or never started
"""

from corral.runtime.base import (
    LauncherUnavailable,
    LiveSandbox,
    Runtime,
    RuntimeError_,
    SandboxStartError,
)

__all__ = ["LauncherUnavailable", "LiveSandbox", "Runtime", "RuntimeError_", "SandboxStartError"]
