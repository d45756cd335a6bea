"""As pid 1 of a pid namespace the agent reaps every child, orphans included."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from .harness import AgentProcess, bash

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare(1)"
)


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, state) of the direct children of `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append((int(entry), fields[0]))
    return found


def test_orphans_are_reaped_by_pid_1(tmp_path: Path) -> None:
    agent = AgentProcess(tmp_path, wrapper=["unshare", "--pid", "--fork", "--kill-child"])
    try:
        # unshare --fork: the agent is the child of `unshare`, pid 1 in the new namespace
        ((agent_pid, _),) = _children(agent.process.pid)
        status = Path(f"/proc/{agent_pid}/status").read_text()
        ns_pids = status.split("NSpid:")[1].splitlines()[0].split()
        assert ns_pids[-1] == "1"
        for _ in range(3):
            # each command leaves orphans that exit later and are re-parented to the agent
            result = agent.client.run(bash("(sleep 0.2; exit 3) & (sleep 0.3 &) ; echo spawned"))
            assert result.stdout == "spawned\n"
        time.sleep(0.8)
        zombies = [pid for pid, state in _children(agent_pid) if state == "Z"]
        assert zombies == []
        assert _children(agent_pid) == []
        # and the agent still serves
        assert agent.client.run(bash("echo ok")).stdout == "ok\n"
        # unshare(1) ignores SIGTERM while it waits: stop the agent itself
        os.kill(agent_pid, signal.SIGTERM)
        agent.process.wait(timeout=10)
    finally:
        survivors = agent.stop()
    assert survivors == []
