"""`GET /files` of a standalone agent: which downloads go by sendfile, and their edge cases.

A file larger than one 128 KiB chunk, uncompressed, is answered with `Content-Length` (its
size at open) and sent by the kernel; a file that shrinks meanwhile makes the agent abort the
connection rather than send a short body, and bytes appended meanwhile are not sent. gzip
answers, small files and pseudo-files (`st_size` 0) stay chunked.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import httpx
import pytest

from .harness import AgentProcess

TOKEN = {"x-access-token": "test-token"}
MIB = 1024 * 1024


def _get(agent: AgentProcess, path: Path | str, **headers: str) -> httpx.Response:
    return agent.client.http.get("/files", params={"path": str(path)}, headers=TOKEN | headers)


def test_a_large_file_has_a_content_length_and_the_connection_is_reused(
    agent: AgentProcess, tmp_path: Path
) -> None:
    data = os.urandom(3 * MIB + 5)
    target = tmp_path / "big.bin"
    target.write_bytes(data)
    first = _get(agent, target)
    assert first.status_code == 200
    assert first.headers["content-length"] == str(len(data))
    assert "transfer-encoding" not in first.headers
    assert first.headers["content-disposition"] == 'inline; filename="big.bin"'
    assert first.content == data
    # Keep-alive after a sendfile body: the same connection answers the next requests.
    with agent.client.http.stream(
        "GET", "/files", params={"path": str(target)}, headers=TOKEN
    ) as second:
        assert b"".join(second.iter_bytes()) == data
    assert _get(agent, tmp_path / "missing").status_code == 404


def test_gzip_small_and_pseudo_files_stay_chunked(agent: AgentProcess, tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"line\n" * MIB)
    compressed = _get(agent, big, **{"accept-encoding": "gzip"})
    assert compressed.headers["transfer-encoding"] == "chunked"
    assert compressed.headers["content-encoding"] == "gzip"
    assert compressed.content == b"line\n" * MIB  # httpx decodes it
    small = tmp_path / "small.bin"
    small.write_bytes(b"s" * (128 * 1024))
    answer = _get(agent, small)
    assert answer.headers["transfer-encoding"] == "chunked"
    assert answer.content == b"s" * (128 * 1024)
    status = _get(agent, "/proc/self/status")  # st_size 0, content nonetheless
    assert status.status_code == 200 and b"Pid:" in status.content


def test_a_file_that_shrinks_during_the_download_aborts_it(
    agent: AgentProcess, tmp_path: Path
) -> None:
    target = tmp_path / "shrinks.bin"
    target.write_bytes(b"x" * (32 * MIB))
    with (
        pytest.raises(httpx.RemoteProtocolError),
        agent.client.http.stream(
            "GET", "/files", params={"path": str(target)}, headers=TOKEN
        ) as response,
    ):
        assert response.headers["content-length"] == str(32 * MIB)
        # Nothing read yet: only socket buffers' worth (well under 1 MiB) has gone.
        os.truncate(target, MIB)
        received = sum(len(piece) for piece in response.iter_raw())
        pytest.fail(f"a {received}-byte body completed instead of failing")
    assert _get(agent, target).content == b"x" * MIB  # the agent serves on


def test_bytes_appended_during_the_download_are_not_sent(
    agent: AgentProcess, tmp_path: Path
) -> None:
    data = os.urandom(4 * MIB)
    target = tmp_path / "grows.bin"
    target.write_bytes(data)
    with agent.client.http.stream(
        "GET", "/files", params={"path": str(target)}, headers=TOKEN
    ) as response:
        with target.open("ab") as appending:
            appending.write(b"more" * MIB)
        assert b"".join(response.iter_raw()) == data
    assert len(_get(agent, target).content) == 8 * MIB


def _open_fds(agent: AgentProcess) -> int:
    return len(os.listdir(f"/proc/{agent.process.pid}/fd"))


def test_clients_that_leave_early_leak_no_file(agent: AgentProcess, tmp_path: Path) -> None:
    target = tmp_path / "left.bin"
    target.write_bytes(b"y" * (8 * MIB))
    assert len(_get(agent, target).content) == 8 * MIB
    before = _open_fds(agent)
    request = (
        f"GET /files?path={target} HTTP/1.1\r\nhost: agent\r\nx-access-token: test-token\r\n\r\n"
    ).encode()
    for read_first in (0, 300_000):
        for _ in range(20):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(agent.socket_path)
                client.sendall(request)
                received = 0
                while received < read_first:
                    received += len(client.recv(65536))
    for _ in range(200):  # the agent notices each departure on its own schedule
        if _open_fds(agent) <= before:
            break
        time.sleep(0.01)
    assert _open_fds(agent) <= before
    assert len(_get(agent, target).content) == 8 * MIB
