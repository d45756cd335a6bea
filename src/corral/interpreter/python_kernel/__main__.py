"""Start an IPython kernel for a Corral python context (like `ipykernel_launcher`, plus E2B bits).

* The working directory is removed from `sys.path` while ipykernel loads (IPython puts `''`
  back for user code), as `ipykernel_launcher` does.
* `debugpy` is hidden while ipykernel starts: its import costs ~90 ms of the kernel's
  ~350 ms start and only serves Jupyter's visual debugger, which the E2B protocol has no use
  for. User code can still import it afterwards.
* The kernel spec passes `--ip=127.0.0.1`: without it IPKernelApp enumerates the machine's
  network interfaces for its `ip` default (a psutil import, ~20 ms of the start).
* After initialisation the E2B formatters (`e2b/data`, `e2b/chart`) are registered.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def main() -> None:
    """Run the kernel until it is shut down."""
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    hidden = "debugpy" not in sys.modules
    if hidden:
        sys.modules["debugpy"] = None  # type: ignore[assignment]
    try:
        from ipykernel.kernelapp import IPKernelApp

        app: Any = IPKernelApp.instance()
        app.initialize()
    finally:
        if hidden:
            del sys.modules["debugpy"]

    from corral.interpreter.python_kernel.display import register_formatters

    register_formatters(app.shell)
    app.start()


if __name__ == "__main__":
    main()
