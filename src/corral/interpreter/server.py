"""Run the interpreter: the context registry and uvicorn on the sockets `bootstrap` opened.

uvicorn (httptools, no access log, no lifespan) serves the app on the already listening
sockets. SIGTERM or SIGINT makes uvicorn stop accepting and close open streams within
`GRACEFUL_SHUTDOWN` seconds; then every kernel is shut down and the connection files'
directory removed, and the process exits with status 0.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import socket
import time
from dataclasses import dataclass
from types import FrameType

import uvicorn

from corral.interpreter.app import create_app
from corral.interpreter.bootstrap import EarlyKernel
from corral.interpreter.registry import ContextRegistry

__all__ = ["GRACEFUL_SHUTDOWN", "ServeOptions", "serve"]

log = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN = 2
"""Seconds uvicorn gives open requests at shutdown before closing them."""


@dataclass(frozen=True)
class ServeOptions:
    """How `serve` runs (see `cli` for the command-line flags)."""

    runtime_dir: str
    """Private directory of the kernels' connection files, removed at exit."""
    default_cwd: str
    """Working directory of contexts created without one."""
    early_python: EarlyKernel | None = None
    """The default python kernel, if `bootstrap` already spawned it."""
    log_level: str = "warning"
    started_at: float | None = None
    """`time.monotonic()` at process start: dates the start-up steps in the INFO log."""
    eager_javascript: bool = False
    """Start the default javascript context's kernel at start (else at its first use)."""


def serve(sockets: list[socket.socket], options: ServeOptions) -> None:
    """Serve until SIGTERM/SIGINT, then shut every kernel down."""
    clock = _StartupClock(options.started_at)
    clock.log("server imports done")
    try:
        asyncio.run(_serve(sockets, options, clock))
    finally:
        shutil.rmtree(options.runtime_dir, ignore_errors=True)


async def _serve(sockets: list[socket.socket], options: ServeOptions, clock: _StartupClock) -> None:
    registry = ContextRegistry(runtime_dir=options.runtime_dir, default_cwd=options.default_cwd)
    await registry.start(options.early_python, eager_javascript=options.eager_javascript)
    clock.log("default contexts registered")
    ready = asyncio.ensure_future(registry.wait_default_ready())
    ready.add_done_callback(lambda _: clock.log("default python kernel ready"))
    config = uvicorn.Config(
        create_app(registry),
        http="httptools",
        loop="asyncio",
        lifespan="off",
        access_log=False,
        log_level=options.log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
    )
    server = uvicorn.Server(config)
    accepting = asyncio.ensure_future(_log_when_started(server, clock))
    _keep_running_after_signals()
    try:
        await server.serve(sockets=sockets)
    finally:
        accepting.cancel()
        ready.cancel()
        await registry.close()


async def _log_when_started(server: uvicorn.Server, clock: _StartupClock) -> None:
    while not server.started:
        await asyncio.sleep(0.002)
    clock.log("accepting connections")


class _StartupClock:
    """Logs how long after the process start a start-up step finished."""

    def __init__(self, started_at: float | None) -> None:
        self._started_at = time.monotonic() if started_at is None else started_at

    def log(self, step: str) -> None:
        log.info("%s %.0f ms after start", step, (time.monotonic() - self._started_at) * 1000)


def _keep_running_after_signals() -> None:
    """Let `serve` return after SIGTERM/SIGINT so that the kernels are shut down.

    uvicorn handles both signals while it serves, then restores the previous handlers and
    raises the signal again; with the default handlers that would end the process before
    the `finally` that stops the kernels.
    """
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _ignore_signal)


def _ignore_signal(signum: int, frame: FrameType | None) -> None:
    log.info("signal %d: shutting the kernels down", signum)
