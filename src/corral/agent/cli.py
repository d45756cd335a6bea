"""`python -m corral.agent --listen PATH --config-json JSON`: the agent without isolation.

Binds the unix socket (replacing a stale one), serves until SIGTERM/SIGINT, then removes
the socket file. Used by tests, benchmarks and the fake runtime.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
from collections.abc import Sequence

from corral.agent.server import serve
from corral.protocol.agent_config import AgentConfig

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m corral.agent", description=__doc__)
    parser.add_argument("--listen", required=True, help="unix socket path to serve on")
    parser.add_argument("--config-json", required=True, help="AgentConfig.to_json() output")
    parser.add_argument("--etc-dir", default="/etc", help="where passwd and group are read")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = AgentConfig.from_json(args.config_json)
    except (ValueError, KeyError, TypeError) as exc:
        print(f"corral.agent: invalid --config-json: {exc}", file=sys.stderr)
        return 2
    with contextlib.suppress(FileNotFoundError):
        os.unlink(args.listen)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(args.listen)
        listener.listen(1024)
        serve(listener, config, etc_dir=args.etc_dir)
    finally:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(args.listen)
    return 0
