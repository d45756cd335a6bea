"""`ManagedProcess` and `ProcessTable` in-process: events, grace, backpressure, retention.

Children are reaped here with `waitpid(pid)` for their own pid only, never `waitpid(-1)`,
so nothing else the test process started is touched.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import pytest

from corral.agent.errors import InputUnavailable, ProcessNotFound
from corral.agent.managed_process import OUTPUT_GRACE_SECONDS, ManagedProcess
from corral.agent.process_table import ProcessTable
from corral.agent.spawn import SpawnRequest, spawn
from corral.agent.users import UserDatabase
from corral.protocol.process_messages import (
    DataEvent,
    EndEvent,
    InputStream,
    OutputStream,
    ProcessConfig,
    ProcessEvent,
    ProcessInput,
    ProcessSelector,
    StartEvent,
    decode_event,
)


class Sink:
    """Records events; `finish` marks the end."""

    def __init__(self) -> None:
        self.events: list[ProcessEvent] = []
        self.finished = asyncio.Event()

    def send_event(self, payload: bytes) -> None:
        self.events.append(decode_event(json.loads(payload)))

    def finish(self, end_payload: bytes) -> None:
        self.send_event(end_payload)
        self.finished.set()

    def output(self, stream: OutputStream = OutputStream.STDOUT) -> bytes:
        return b"".join(
            e.data for e in self.events if isinstance(e, DataEvent) and e.stream is stream
        )


def _start(table: ProcessTable, script: str, *, stdin: bool = False) -> ManagedProcess:
    loop = asyncio.get_running_loop()
    config = ProcessConfig("/bin/sh", ("-c", script))
    child = spawn(
        SpawnRequest(
            argv=(config.cmd, *config.args),
            env={"PATH": "/usr/bin:/bin"},
            cwd="/",
            user=UserDatabase().lookup("root"),
            pty=None,
            stdin=stdin,
        )
    )
    process = ManagedProcess(loop, child, config, None, table.process_ended)
    table.add(process)
    return process


async def _reap(process: ManagedProcess) -> None:
    """Wait for this one child (only) and hand its status over, like the SIGCHLD reaper."""
    while True:
        pid, status = os.waitpid(process.pid, os.WNOHANG)
        if pid:
            process.on_reaped(status)
            return
        await asyncio.sleep(0.005)


async def test_events_and_retention() -> None:
    table = ProcessTable(asyncio.get_running_loop(), retain_seconds=0.1)
    process = _start(table, "echo out; echo err >&2; exit 4")
    sink = Sink()
    process.attach(sink)
    await _reap(process)
    await asyncio.wait_for(sink.finished.wait(), 5)
    assert sink.events[0] == StartEvent(process.pid)
    assert sink.output() == b"out\n" and sink.output(OutputStream.STDERR) == b"err\n"
    assert sink.events[-1] == EndEvent(4, True, "exit status 4", "exit status 4")
    assert process.ended and not process.running
    selector = ProcessSelector(pid=process.pid)
    with pytest.raises(ProcessNotFound):
        table.find_running(selector)
    late = Sink()
    table.find_attachable(selector).attach(late)  # retained: start + end at once
    assert [type(e) for e in late.events] == [StartEvent, EndEvent] and late.finished.is_set()
    await asyncio.sleep(0.2)
    with pytest.raises(ProcessNotFound, match=f"process with pid {process.pid} not found"):
        table.find_attachable(selector)


async def test_orphan_holding_pipes_ends_after_the_grace() -> None:
    table = ProcessTable(asyncio.get_running_loop())
    process = _start(table, "sleep 2 & echo parent")
    sink = Sink()
    process.attach(sink)
    began = time.monotonic()
    await _reap(process)
    await asyncio.wait_for(sink.finished.wait(), 5)
    assert OUTPUT_GRACE_SECONDS <= time.monotonic() - began + 0.05 < 1.5
    assert sink.output() == b"parent\n" and sink.events[-1].exit_code == 0  # type: ignore[union-attr]
    os.killpg(process.pid, signal.SIGKILL)  # the orphan is still in the job's process group


async def test_backpressure_pauses_reading_without_loss() -> None:
    table = ProcessTable(asyncio.get_running_loop())
    process = _start(table, "head -c 1000000 /dev/zero")
    sink = Sink()
    process.attach(sink)
    process.set_sink_paused(sink, True)
    await asyncio.sleep(0.2)
    assert sink.output() == b""  # nothing read while the stream is full: the writer blocks
    assert process.running  # blocked on the full pipe, not finished
    process.set_sink_paused(sink, False)
    await _reap(process)
    await asyncio.wait_for(sink.finished.wait(), 5)
    assert len(sink.output()) == 1000000


async def test_detach_keeps_the_process_and_input_rules() -> None:
    table = ProcessTable(asyncio.get_running_loop())
    process = _start(table, "read line; echo got:$line", stdin=True)
    first, second = Sink(), Sink()
    process.attach(first)
    process.detach(first)
    process.attach(second)
    with pytest.raises(InputUnavailable, match="tty not assigned"):
        process.write_input(ProcessInput(InputStream.PTY, b"x"))
    assert process.write_input(ProcessInput(None)) is None
    assert process.write_input(ProcessInput(InputStream.STDIN, b"hello\n")) is None
    await _reap(process)
    await asyncio.wait_for(second.finished.wait(), 5)
    assert second.output() == b"got:hello\n"
    assert first.events == [StartEvent(process.pid)]  # nothing after it detached
    with pytest.raises(InputUnavailable):
        process.write_input(ProcessInput(InputStream.STDIN, b"late"))
