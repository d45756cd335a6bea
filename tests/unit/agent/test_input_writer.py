"""`InputWriter`: immediate writes, queued writes in order, close after flush, abort."""

from __future__ import annotations

import asyncio
import os

import pytest

from corral.agent.errors import InputUnavailable
from corral.agent.input_writer import InputWriter


def _pipe() -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    os.set_blocking(read_fd, False)
    return read_fd, write_fd


def _drain(fd: int) -> bytes:
    data = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 20)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


async def test_small_write_completes_at_once() -> None:
    read_fd, write_fd = _pipe()
    writer = InputWriter(asyncio.get_running_loop(), write_fd, owns_fd=True)
    assert writer.write(b"hello") is None
    writer.close_when_flushed()
    assert writer.closed
    assert os.read(read_fd, 100) == b"hello"
    assert os.read(read_fd, 100) == b""  # EOF: the writer closed its fd
    os.close(read_fd)


async def test_large_writes_queue_in_order_and_close_after_flush() -> None:
    read_fd, write_fd = _pipe()
    writer = InputWriter(asyncio.get_running_loop(), write_fd, owns_fd=True)
    first, second = b"a" * 200_000, b"b" * 50_000
    pending_first = writer.write(first)
    pending_second = writer.write(second)
    assert pending_first is not None and pending_second is not None
    assert writer.backlog > 0
    writer.close_when_flushed()
    with pytest.raises(InputUnavailable):
        writer.write(b"late")
    received = b""
    while not pending_second.done():
        received += _drain(read_fd)
        await asyncio.sleep(0)
    received += _drain(read_fd)
    assert received == first + second
    assert pending_first.done() and pending_first.exception() is None
    os.close(read_fd)


async def test_abort_fails_pending_and_broken_pipe_is_an_error() -> None:
    read_fd, write_fd = _pipe()
    writer = InputWriter(asyncio.get_running_loop(), write_fd, owns_fd=False)
    pending = writer.write(b"x" * 300_000)
    assert pending is not None
    writer.abort("process has exited")
    with pytest.raises(InputUnavailable, match="process has exited"):
        await pending
    os.close(read_fd)
    other = InputWriter(asyncio.get_running_loop(), write_fd, owns_fd=True)
    with pytest.raises(InputUnavailable, match="Broken pipe"):
        other.write(b"y")
    other.abort("done")
