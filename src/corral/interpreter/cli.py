"""`python -m corral.interpreter [--host H] [--port P] [--cwd DIR]`: start-up order matters.

Only the stdlib is imported until the port listens and the python kernel is spawned (see
`bootstrap`); the server's own imports (jupyter_client, Starlette, uvicorn) come after.
"""

from __future__ import annotations

import argparse
import os
import time

from corral.interpreter.bootstrap import launch_early_kernel, listen, make_runtime_dir

__all__ = ["main", "parse_args"]

DEFAULT_PORT = 49999


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of the interpreter server."""
    parser = argparse.ArgumentParser(
        prog="python -m corral.interpreter",
        description="Corral's code-interpreter server (E2B code interpreter protocol).",
    )
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port")
    parser.add_argument(
        "--cwd",
        default=None,
        help="working directory of contexts without one (default: /home/user if it exists, "
        "else the current directory)",
    )
    parser.add_argument(
        "--javascript-kernel",
        choices=("eager", "lazy"),
        default="lazy",
        help="start the default javascript context's Deno kernel at its first execution "
        "(lazy, ~0.5 s then) or at server start (eager: ~170 MiB more per idle sandbox)",
    )
    parser.add_argument("--log-level", default="warning", help="server log level")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Listen, spawn the python kernel, then import and run the server."""
    started_at = time.monotonic()
    args = parse_args(argv)
    default_cwd = os.path.abspath(args.cwd or _default_cwd())
    sockets = listen(args.host, args.port)
    runtime_dir = make_runtime_dir()
    early_python = launch_early_kernel("ipython", runtime_dir=runtime_dir, cwd=default_cwd)

    import logging

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger(__name__).info(
        "listening on %s:%d and python kernel spawned %.0f ms after start",
        args.host,
        args.port,
        (time.monotonic() - started_at) * 1000,
    )

    from corral.interpreter.server import ServeOptions, serve

    options = ServeOptions(
        runtime_dir=runtime_dir,
        default_cwd=default_cwd,
        early_python=early_python,
        log_level=args.log_level,
        started_at=started_at,
        eager_javascript=args.javascript_kernel == "eager",
    )
    serve(sockets, options)


def _default_cwd() -> str:
    return "/home/user" if os.path.isdir("/home/user") else os.getcwd()
