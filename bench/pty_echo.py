"""PTY keystroke echo latency, through the official SDK.

One sandbox, one `sbx.pty.create()` (an interactive login bash on a terminal). Each sample
sends one key (`pty.send_stdin`) and waits until the terminal echoes it back on the PTY
output stream; a backspace (not timed) then keeps the line empty. N samples after a warm-up
(`CORRAL_BENCH_N`, default 300).

    /work/main/.venv/bin/python bench/pty_echo.py
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import _harness as harness
from _results import Latencies, measure_calls

__all__ = ["measure"]

ECHO_TIMEOUT = 10.0
KEYS = b"abcdefghijklmnopqrstuvwxyz"
BACKSPACE = b"\x7f"


class _Terminal:
    """The PTY output seen so far, with a way to wait for bytes after a mark."""

    def __init__(self) -> None:
        self.output = bytearray()
        self.changed = threading.Condition()

    def feed(self, data: bytes) -> None:
        with self.changed:
            self.output += data
            self.changed.notify_all()

    def mark(self) -> int:
        with self.changed:
            return len(self.output)

    def wait_for(self, needle: bytes, since: int) -> None:
        deadline = time.monotonic() + ECHO_TIMEOUT
        with self.changed:
            while needle not in self.output[since:]:
                left = deadline - time.monotonic()
                if left <= 0:
                    tail = bytes(self.output[-200:])
                    raise TimeoutError(f"no echo of {needle!r} within {ECHO_TIMEOUT}s: {tail!r}")
                self.changed.wait(left)


def measure(server: harness.CorralServer, n: int, warmup: int, ids: list[str]) -> Latencies:
    """Key -> echo on one PTY of one sandbox (its id goes to `ids`)."""
    with harness.environ(harness.sdk_env(server)):
        from e2b import Sandbox
        from e2b.sandbox.commands.command_handle import PtySize

        sbx = Sandbox.create(timeout=600)
        ids.append(sbx.sandbox_id)
        try:
            terminal = _Terminal()
            handle: Any = sbx.pty.create(PtySize(rows=24, cols=200), timeout=0)
            reader = threading.Thread(
                target=lambda: _drain(handle, terminal), name="pty-reader", daemon=True
            )
            reader.start()
            keys = iter(KEYS * (1 + (n + warmup) // len(KEYS)))

            def one() -> float:
                key = bytes([next(keys)])
                since = terminal.mark()
                start = time.perf_counter()
                sbx.pty.send_stdin(handle.pid, key)
                terminal.wait_for(key, since)
                elapsed = time.perf_counter() - start
                since = terminal.mark()
                sbx.pty.send_stdin(handle.pid, BACKSPACE)
                terminal.wait_for(b"\x08", since)
                return elapsed

            try:
                return measure_calls("PTY keystroke echo", n, one, warmup=warmup)
            finally:
                sbx.pty.kill(handle.pid)
                reader.join(10)
        finally:
            sbx.kill()


def _drain(handle: Any, terminal: _Terminal) -> None:
    try:
        handle.wait(on_pty=terminal.feed)
    except Exception:
        pass  # the PTY is killed at the end: its non-zero end is expected


def main() -> int:
    n = harness.bench_n(300)
    warmup = harness.warmup_count(n, most=20)
    with harness.benchmark_server() as (server, ids):
        result = measure(server, n, warmup, ids)
    print(f"runtime={server.runtime} n={n} warmup={warmup}")
    print(result.line())
    return harness.report_leaks(server, ids) or (1 if result.failures else 0)


if __name__ == "__main__":
    sys.exit(main())
