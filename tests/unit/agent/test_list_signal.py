"""`List`, `SendSignal` and selecting processes by tag."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from corral.protocol.connect import Code, ConnectError
from corral.protocol.process_messages import EndEvent, StartEvent

from .harness import AgentClient, bash


def test_list_echoes_the_start_config(client: AgentClient, tmp_path: object) -> None:
    body = bash("sleep 5", process={"envs": {"LISTED": "1"}, "cwd": "/tmp"}, tag="my-tag")
    with client.stream("Start", body) as reader:
        pid = reader.read_until(lambda e: isinstance(e, StartEvent)).pid  # type: ignore[union-attr]
        listed = {p["pid"]: p for p in client.unary("List", {})["processes"]}
        assert listed[pid] == {
            "config": {
                "cmd": "/bin/bash",
                "args": ["-c", "sleep 5"],
                "envs": {"LISTED": "1"},
                "cwd": "/tmp",
            },
            "pid": pid,
            "tag": "my-tag",
        }
        assert client.unary("SendSignal", {"process": {"tag": "my-tag"}, "signal": 15}) == {}
        result = reader.read_all()
    assert result.end == EndEvent(-1, False, "signal: terminated", "signal: terminated")
    assert pid not in {p["pid"] for p in client.unary("List", {}).get("processes", [])}


def test_list_empty_is_an_empty_message(agent_factory: object) -> None:
    agent = agent_factory()  # type: ignore[operator]
    assert agent.client.unary("List", {}) == {}


def test_sigkill_reaches_the_whole_job(client: AgentClient) -> None:
    marker = f"{time.time_ns() % 10**6}.{os.getpid()}"
    with client.stream("Start", bash(f"sleep {marker} & sleep {marker}; wait")) as reader:
        pid = reader.read_until(lambda e: isinstance(e, StartEvent)).pid  # type: ignore[union-attr]
        time.sleep(0.1)
        client.unary("SendSignal", {"process": {"pid": pid}, "signal": "SIGNAL_SIGKILL"})
        result = reader.read_all()
    assert result.end == EndEvent(-1, False, "signal: killed", "signal: killed")
    time.sleep(0.1)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            assert f"sleep\0{marker}".encode() not in cmdline, "a child of the job survived"


def test_signal_errors(client: AgentClient) -> None:
    with pytest.raises(ConnectError) as info:
        client.unary("SendSignal", {"process": {"pid": 3999999}, "signal": "SIGNAL_SIGKILL"})
    assert info.value.code is Code.NOT_FOUND
    with pytest.raises(ConnectError) as info:
        client.unary("SendSignal", {"process": {"tag": "no-such-tag"}, "signal": "SIGNAL_SIGTERM"})
    assert info.value.message == "process with tag 'no-such-tag' not found"
    with pytest.raises(ConnectError) as info:
        client.unary("SendSignal", {"process": {"pid": 1}, "signal": "SIGNAL_SIGSTOP"})
    assert info.value.code is Code.INVALID_ARGUMENT
    with pytest.raises(ConnectError) as info:
        client.unary("SendSignal", {"process": {}, "signal": "SIGNAL_SIGKILL"})
    assert info.value.code is Code.INVALID_ARGUMENT
    with client.stream("Start", bash("sleep 5")) as reader:
        pid = reader.read_until(lambda e: isinstance(e, StartEvent)).pid  # type: ignore[union-attr]
        with pytest.raises(ConnectError) as info:
            client.unary("SendSignal", {"process": {"pid": pid}})
        assert info.value.code is Code.INVALID_ARGUMENT  # SIGNAL_UNSPECIFIED
        client.unary("SendSignal", {"process": {"pid": pid}, "signal": 9})
        reader.read_all()
