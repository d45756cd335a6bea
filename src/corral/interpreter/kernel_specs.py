"""The kernel specs shipped with the package (`kernels/<name>/kernel.json`), read with the stdlib.

jupyter_client's `KernelSpecManager` reads the same directory (and only it) for every kernel
the server starts; this module exists for the one kernel started before jupyter_client is
imported (see `bootstrap`), and formats its command line the way jupyter_client does: a
leading `python` becomes this interpreter, `{connection_file}`, `{resource_dir}` and
`{prefix}` are substituted. Kernel names are the implementations: `ipython`, `deno`,
`bash` (bash_kernel) and `ir` (IRkernel). None may be called `python`: jupyter_client
silently replaces that name with ipykernel's own spec.
"""

from __future__ import annotations

import json
import os
import re
import sys

__all__ = ["KERNELS_DIR", "format_argv", "kernel_argv", "kernel_dir"]

KERNELS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernels")

_PYTHON_NAMES = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info)}
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_]+)\}")


def kernel_dir(name: str) -> str:
    """The resource directory of kernel `name`."""
    return os.path.join(KERNELS_DIR, name)


def kernel_argv(name: str) -> list[str]:
    """The `argv` template of kernel `name`, unformatted."""
    with open(os.path.join(kernel_dir(name), "kernel.json"), encoding="utf-8") as spec_file:
        spec = json.load(spec_file)
    argv = spec["argv"]
    if not isinstance(argv, list) or not all(isinstance(arg, str) for arg in argv):
        raise ValueError(f"kernel spec {name!r}: argv must be a list of strings")
    return list(argv)


def format_argv(argv: list[str], *, connection_file: str, resource_dir: str) -> list[str]:
    """Fill in an argv template like jupyter_client's `KernelManager.format_kernel_cmd`."""
    values = {
        "connection_file": connection_file,
        "resource_dir": resource_dir,
        "prefix": sys.prefix,
    }
    command = list(argv)
    if command and command[0] in _PYTHON_NAMES:
        command[0] = sys.executable
    return [
        _PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), arg)
        for arg in command
    ]
