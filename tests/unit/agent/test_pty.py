"""PTY processes: merged `pty` output, controlling terminal, input, resize, Ctrl-D."""

from __future__ import annotations

import pytest

from corral.protocol.connect import Code, ConnectError
from corral.protocol.process_messages import DataEvent, OutputStream, StartEvent

from .harness import AgentClient, EventReader, b64


def _pty_start(cmd: str, args: list[str], cols: int = 80, rows: int = 24) -> dict[str, object]:
    return {
        "process": {"cmd": cmd, "args": args, "envs": {"TERM": "xterm-256color"}},
        "pty": {"size": {"cols": cols, "rows": rows}},
    }


def _read_pty_until(reader: EventReader, needle: bytes) -> bytes:
    seen = b""
    while needle not in seen:
        event = reader.next_event()
        assert event is not None, f"stream ended before {needle!r}: {seen!r}"
        if isinstance(event, DataEvent):
            assert event.stream is OutputStream.PTY
            seen += event.data
    return seen


def test_pty_output_is_merged_and_terminal_is_controlling(client: AgentClient) -> None:
    script = "stty size; tty >/dev/null && echo is-a-tty; echo via-ctty > /dev/tty; echo err >&2"
    result = client.run(_pty_start("/bin/bash", ["-c", script], cols=100, rows=30))
    assert result.stdout == "" and result.stderr == ""
    text = result.pty.decode()
    assert "30 100\r\n" in text
    assert "is-a-tty" in text and "via-ctty" in text and "err" in text
    assert result.end.exit_code == 0


def test_pty_chunks_are_at_most_16_kib(client: AgentClient) -> None:
    result = client.run(_pty_start("/bin/bash", ["-c", "head -c 200000 /dev/zero | tr '\\0' a"]))
    sizes = [len(e.data) for e in result.events if isinstance(e, DataEvent)]
    assert sum(sizes) == 200000
    assert max(sizes) <= 16 * 1024


def test_pty_input_resize_and_ctrl_d(client: AgentClient) -> None:
    body = _pty_start("/bin/sh", [], cols=80, rows=24)
    with client.stream("Start", body) as reader:
        pid = reader.read_until(lambda e: isinstance(e, StartEvent)).pid  # type: ignore[union-attr]
        # the terminal echoes what is typed: wait for a marker only the shell's output has
        send = {"process": {"pid": pid}, "input": {"pty": b64("stty size; echo mark$((0+1))\n")}}
        client.unary("SendInput", send)
        assert b"24 80" in _read_pty_until(reader, b"mark1\r\n")
        update = {"process": {"pid": pid}, "pty": {"size": {"cols": 132, "rows": 40}}}
        assert client.unary("Update", update) == {}
        client.unary(
            "SendInput",
            {"process": {"pid": pid}, "input": {"pty": b64("stty size; echo mark$((1+1))\n")}},
        )
        assert b"40 132" in _read_pty_until(reader, b"mark2\r\n")
        # stdin-style input and CloseStdin are errors for a PTY process
        with pytest.raises(ConnectError) as info:
            client.unary("SendInput", {"process": {"pid": pid}, "input": {"stdin": b64("x")}})
        assert info.value.code is Code.FAILED_PRECONDITION
        with pytest.raises(ConnectError) as info:
            client.unary("CloseStdin", {"process": {"pid": pid}})
        assert info.value.code is Code.FAILED_PRECONDITION
        client.unary("SendInput", {"process": {"pid": pid}, "input": {"pty": b64("\x04")}})
        result = reader.read_all()
    assert result.end.exit_code == 0


def test_update_of_pipe_process_is_an_error(client: AgentClient) -> None:
    with client.stream("Start", {"process": {"cmd": "/bin/sleep", "args": ["5"]}}) as reader:
        pid = reader.read_until(lambda e: isinstance(e, StartEvent)).pid  # type: ignore[union-attr]
        with pytest.raises(ConnectError) as info:
            client.unary(
                "Update", {"process": {"pid": pid}, "pty": {"size": {"cols": 1, "rows": 1}}}
            )
        assert info.value.code is Code.FAILED_PRECONDITION
        assert client.unary("Update", {"process": {"pid": pid}}) == {}  # nothing to change
        client.unary("SendSignal", {"process": {"pid": pid}, "signal": "SIGNAL_SIGKILL"})
        reader.read_all()


def test_pty_as_other_user(client: AgentClient) -> None:
    result = client.run(_pty_start("/bin/sh", ["-c", "id -u; tty"]), user="nobody")
    assert result.pty.decode().startswith("65534\r\n/dev/pts/")
