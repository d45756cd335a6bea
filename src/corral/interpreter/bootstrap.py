"""The first milliseconds of the server, stdlib only: listen, then start the python kernel.

Start-up latency is what a user of the SDK feels (create → first `run_code` result), and the
sandbox's create returns as soon as port 49999 accepts connections. So, before the server
imports jupyter_client, Starlette and uvicorn (~0.3 s), `python -m corral.interpreter`

1. binds and listens on the port (`listen`): connections queue in the backlog until uvicorn
   accepts them;
2. starts the default python kernel (`launch_early_kernel`): writes its connection file and
   spawns the process, which imports ipykernel (~0.3 s) on the other core meanwhile.

The kernel manager adopts that process later (`kernel.Kernel`), so this module imports only
small stdlib modules (no dataclasses, logging, tempfile, uuid or pathlib: each costs
milliseconds before the kernel is spawned). `kernel_environment` is shared with later
kernel launches.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess

from corral.interpreter.kernel_specs import format_argv, kernel_argv, kernel_dir

__all__ = [
    "EarlyKernel",
    "kernel_environment",
    "launch_early_kernel",
    "listen",
    "make_runtime_dir",
    "new_connection_info",
    "random_uuid",
]

_LIB_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
"""The directory holding the `corral` package (put on the python kernel's PYTHONPATH)."""

_CHANNELS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


class EarlyKernel:
    """A kernel process started before jupyter_client was imported."""

    def __init__(
        self,
        *,
        kernel_id: str,
        kernel_name: str,
        connection_info: dict[str, int | str],
        connection_file: str,
        process: subprocess.Popen[bytes],
        cwd: str,
        env: dict[str, str],
    ) -> None:
        self.kernel_id = kernel_id
        self.kernel_name = kernel_name
        self.connection_info = connection_info
        self.connection_file = connection_file
        self.process = process
        self.cwd = cwd
        self.env = env


def listen(host: str, port: int, *, backlog: int = 256) -> list[socket.socket]:
    """Listening sockets on `host` (and on `::` too when `host` is `0.0.0.0`, if IPv6 works)."""
    sockets = [_listening_socket(socket.AF_INET, host, port, backlog)]
    if host == "0.0.0.0":
        try:
            sockets.append(_listening_socket(socket.AF_INET6, "::", port, backlog))
        except OSError:
            pass
    return sockets


def _listening_socket(family: int, host: str, port: int, backlog: int) -> socket.socket:
    # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only when the
    # protocol says TCP, and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def make_runtime_dir() -> str:
    """A new private directory for the kernels' connection files (the server removes it)."""
    parent = os.environ.get("TMPDIR") or "/tmp"
    while True:
        path = os.path.join(parent, "corral-interpreter-" + os.urandom(6).hex())
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        return path


def random_uuid() -> str:
    """A random (version 4) UUID string, without importing `uuid`."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    digits = raw.hex()
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def new_connection_info(kernel_name: str) -> dict[str, int | str]:
    """Connection parameters for one kernel: five free TCP ports on 127.0.0.1 and a new key."""
    probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in _CHANNELS]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        ports = [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()
    info: dict[str, int | str] = dict(zip(_CHANNELS, ports, strict=True))
    info.update(
        ip="127.0.0.1",
        transport="tcp",
        key=random_uuid(),
        signature_scheme="hmac-sha256",
        kernel_name=kernel_name,
    )
    return info


def kernel_environment(kernel_name: str) -> dict[str, str]:
    """The environment of a new kernel process: the server's, plus what the kernel needs.

    Sandbox-wide env vars reach the kernels this way. `JPY_PARENT_PID` makes ipykernel-based
    kernels exit when the server does; the python kernel imports its launcher from this
    package, so the directory holding `corral` is put on its PYTHONPATH if it is missing.
    """
    env = dict(os.environ)
    env["JPY_PARENT_PID"] = str(os.getpid())
    if kernel_name == "ipython":
        paths = [path for path in env.get("PYTHONPATH", "").split(os.pathsep) if path]
        if _LIB_ROOT not in paths:
            env["PYTHONPATH"] = os.pathsep.join([_LIB_ROOT, *paths])
    return env


def launch_early_kernel(kernel_name: str, *, runtime_dir: str, cwd: str) -> EarlyKernel:
    """Write a connection file and spawn kernel `kernel_name` in `cwd`."""
    kernel_id = random_uuid()
    info = new_connection_info(kernel_name)
    connection_file = os.path.join(runtime_dir, f"kernel-{kernel_id}-early.json")
    fd = os.open(connection_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        json.dump(info, stream)
    argv = format_argv(
        kernel_argv(kernel_name),
        connection_file=connection_file,
        resource_dir=kernel_dir(kernel_name),
    )
    env = kernel_environment(kernel_name)
    process = subprocess.Popen(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, start_new_session=True
    )
    return EarlyKernel(
        kernel_id=kernel_id,
        kernel_name=kernel_name,
        connection_info=info,
        connection_file=connection_file,
        process=process,
        cwd=cwd,
        env=env,
    )
