"""Isolation backends behind one `Runtime` protocol. Imports `model`, `protocol` and (the
launcher, to run it in each sandbox) `agent`.

Error hierarchy::

    RuntimeError_            base of everything a backend raises
    ├── SandboxStartError    the sandbox could not be brought up (nothing is left behind)
    ├── LauncherUnavailable  the privileged launcher process died or never started
    └── RunDirTooLong        agent socket paths under the run dir would be too long
"""

from corral.runtime.base import (
    LauncherUnavailable,
    LiveSandbox,
    RunDirTooLong,
    Runtime,
    RuntimeError_,
    SandboxStartError,
    UsageSample,
    check_run_dir,
)

__all__ = [
    "LauncherUnavailable",
    "LiveSandbox",
    "RunDirTooLong",
    "Runtime",
    "RuntimeError_",
    "SandboxStartError",
    "UsageSample",
    "check_run_dir",
]
