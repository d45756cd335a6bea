"""`Connect`: several attached streams, late attach after exit, disconnects, deadlines."""

from __future__ import annotations

import threading
import time

from corral.protocol.connect import Code
from corral.protocol.process_messages import DataEvent, EndEvent, OutputStream, StartEvent

from .harness import AgentClient, bash


def _pids(client: AgentClient) -> set[int]:
    return {p["pid"] for p in client.unary("List", {}).get("processes", [])}


def test_two_attachments_see_the_same_live_events(client: AgentClient) -> None:
    script = "read go; for i in 1 2 3; do echo line$i; done; exit 7"
    with client.stream("Start", bash(script)) as started:
        pid = started.read_until(lambda e: isinstance(e, StartEvent)).pid  # type: ignore[union-attr]
        with client.stream("Connect", {"process": {"pid": pid}}) as attached:
            assert attached.next_event() == StartEvent(pid)
            client.unary("SendInput", {"process": {"pid": pid}, "input": {"stdin": "Z28K"}})
            first = started.read_all()
            second = attached.read_all()
    for result in (first, second):
        assert result.stdout == "line1\nline2\nline3\n"
        assert result.end == EndEvent(7, True, "exit status 7", "exit status 7")


def test_late_connect_after_exit_gets_start_and_end(client: AgentClient) -> None:
    pid = client.run(bash("exit 5")).pid
    with client.stream("Connect", {"process": {"pid": pid}}) as late:
        result = late.read_all()
    assert result.events == [StartEvent(pid), EndEvent(5, True, "exit status 5", "exit status 5")]
    assert result.error is None and result.ended_cleanly
    assert pid not in _pids(client)  # List shows running processes only


def test_connect_unknown_pid_is_not_found(client: AgentClient) -> None:
    with client.stream("Connect", {"process": {"pid": 3999999}}) as reader:
        result = reader.read_all()
    assert result.status == 200 and result.events == []
    assert result.error is not None and result.error.code is Code.NOT_FOUND
    assert result.error.message == "process with pid 3999999 not found"


def test_disconnect_keeps_the_process(client: AgentClient) -> None:
    with client.stream("Start", bash("read x; echo got:$x")) as reader:
        pid = reader.read_until(lambda e: isinstance(e, StartEvent)).pid  # type: ignore[union-attr]
    # the stream's connection is closed now; the process must still be there
    time.sleep(0.1)
    assert pid in _pids(client)
    with client.stream("Connect", {"process": {"pid": pid}}) as attached:
        attached.next_event()
        client.unary("SendInput", {"process": {"pid": pid}, "input": {"stdin": "aGkK"}})
        result = attached.read_all()
    assert result.stdout == "got:hi\n"
    assert result.end.exit_code == 0


def test_connect_timeout_ends_only_the_stream(client: AgentClient) -> None:
    with client.stream("Start", bash("sleep 1; echo still-here")) as started:
        pid = started.read_until(lambda e: isinstance(e, StartEvent)).pid  # type: ignore[union-attr]
        with client.stream("Connect", {"process": {"pid": pid}}, connect_timeout_ms="200") as c:
            bounded = c.read_all()
        assert bounded.error is not None and bounded.error.code is Code.DEADLINE_EXCEEDED
        assert started.read_all().stdout == "still-here\n"


def test_many_concurrent_streams(client: AgentClient) -> None:
    results: list[str] = []

    def run(index: int) -> None:
        results.append(client.run(bash(f"sleep 0.3; echo {index}")).stdout)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(30)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == sorted(f"{i}\n" for i in range(30))
    assert time.monotonic() - began < 5


def test_stalled_reader_applies_backpressure_without_losing_data(client: AgentClient) -> None:
    total = 4 * 1024 * 1024
    with client.stream("Start", bash(f"head -c {total} /dev/zero; echo; echo done >&2")) as r:
        r.read_until(lambda e: isinstance(e, DataEvent))
        time.sleep(0.5)  # stop reading: the agent must pause, not buffer 4 MiB or drop it
        result = r.read_all()
    assert len(result.data(OutputStream.STDOUT)) == total + 1
    assert result.stderr == "done\n"
