"""How a reaped wait status reads on the wire (protocol doc §5.5).

The strings are those of Go's `os.ProcessState.String()`, which envd reports:
`exit status N`, or `signal: <name>` with Go's lowercase signal names.
"""

from __future__ import annotations

import os

from corral.protocol.process_messages import EndEvent

__all__ = ["end_event_for_status", "signal_description"]

# Go's names of the Linux signals (syscall/zerrors_linux_amd64.go).
_GO_SIGNAL_NAMES = {
    1: "hangup",
    2: "interrupt",
    3: "quit",
    4: "illegal instruction",
    5: "trace/breakpoint trap",
    6: "aborted",
    7: "bus error",
    8: "floating point exception",
    9: "killed",
    10: "user defined signal 1",
    11: "segmentation fault",
    12: "user defined signal 2",
    13: "broken pipe",
    14: "alarm clock",
    15: "terminated",
    16: "stack fault",
    17: "child exited",
    18: "continued",
    19: "stopped (signal)",
    20: "stopped",
    21: "stopped (tty input)",
    22: "stopped (tty output)",
    23: "urgent I/O condition",
    24: "CPU time limit exceeded",
    25: "file size limit exceeded",
    26: "virtual timer expired",
    27: "profiling timer expired",
    28: "window changed",
    29: "I/O possible",
    30: "power failure",
    31: "bad system call",
}


def signal_description(signum: int) -> str:
    return _GO_SIGNAL_NAMES.get(signum, f"signal {signum}")


def end_event_for_status(wait_status: int) -> EndEvent:
    """The `end` event of a process whose `waitpid` status is `wait_status`."""
    if os.WIFSIGNALED(wait_status):
        status = f"signal: {signal_description(os.WTERMSIG(wait_status))}"
        if os.WCOREDUMP(wait_status):
            status += " (core dumped)"
        return EndEvent(exit_code=-1, exited=False, status=status, error=status)
    code = os.WEXITSTATUS(wait_status)
    status = f"exit status {code}"
    return EndEvent(exit_code=code, exited=True, status=status, error=status if code else None)
