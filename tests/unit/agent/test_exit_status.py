"""Wait statuses -> end events, with Go's wording (protocol doc §5.5)."""

from __future__ import annotations

import os
import signal

from corral.agent.exit_status import end_event_for_status, signal_description
from corral.protocol.process_messages import EndEvent


def _status_of(code: str) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            exec(code)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return status


def test_exit_codes() -> None:
    assert end_event_for_status(_status_of("os._exit(0)")) == EndEvent(0, True, "exit status 0")
    assert end_event_for_status(_status_of("os._exit(42)")) == EndEvent(
        42, True, "exit status 42", "exit status 42"
    )


def test_signals() -> None:
    killed = _status_of("os.kill(os.getpid(), signal.SIGKILL)")
    assert end_event_for_status(killed) == EndEvent(-1, False, "signal: killed", "signal: killed")
    term = _status_of("os.kill(os.getpid(), signal.SIGTERM)")
    assert end_event_for_status(term).status == "signal: terminated"


def test_core_dump_and_names() -> None:
    core = signal.SIGABRT | 0x80  # WCOREDUMP bit
    assert end_event_for_status(core).status == "signal: aborted (core dumped)"
    assert signal_description(signal.SIGSEGV) == "segmentation fault"
    assert signal_description(signal.SIGHUP) == "hangup"
    assert signal_description(40) == "signal 40"
