"""fork/exec of a user process with pipes or a PTY, as a given user.

`subprocess.Popen` does the fork/exec (in C, with vfork when no identity change is needed);
it never waits: exit statuses are collected by the agent's SIGCHLD reaper. Each process
leads its own process group (pipes) or session (PTY, whose slave becomes the controlling
terminal), so a signal can reach the whole job.
"""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import termios
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from corral.agent.errors import InvalidProcessRequest, SpawnFailed
from corral.agent.users import User
from corral.protocol.process_messages import PtySize

__all__ = ["SpawnRequest", "SpawnedChild", "set_window_size", "spawn"]


@dataclass(frozen=True, slots=True)
class SpawnRequest:
    """Everything needed to exec one process."""

    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: str
    user: User
    pty: PtySize | None
    stdin: bool


@dataclass(frozen=True, slots=True)
class SpawnedChild:
    """A started child and the agent's ends of its stdio (non-blocking, close-on-exec).

    Pipes: `stdin_fd` (None when stdin is /dev/null), `stdout_fd`, `stderr_fd`.
    PTY: `pty_fd` is the master, used for output, input and resizing.
    """

    popen: subprocess.Popen[bytes]
    pid: int
    stdin_fd: int | None = None
    stdout_fd: int | None = None
    stderr_fd: int | None = None
    pty_fd: int | None = None


def set_window_size(fd: int, size: PtySize) -> None:
    """TIOCSWINSZ on a PTY fd; the kernel sends SIGWINCH to the foreground job."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size.rows, size.cols, 0, 0))


def _take_controlling_terminal() -> None:
    # Runs in the child after setsid(): make the PTY slave (now fd 0) its controlling tty.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@dataclass(frozen=True, slots=True)
class _Identity:
    """Popen's `user`/`group`/`extra_groups`: None where nothing changes."""

    uid: int | None
    gid: int | None
    groups: list[int] | None


def _identity_change(user: User) -> _Identity:
    """What differs from the agent's own identity.

    CPython forks instead of vforking as soon as any of them is given (~1 ms instead of
    ~0.2 ms here), so a process of the agent's own identity gets none. The primary gid in
    the supplementary list grants nothing extra, so it does not count as a difference.
    """
    wanted = set(user.groups) - {user.gid}
    same_groups = wanted == set(os.getgroups()) - {os.getgid()}
    return _Identity(
        uid=None if user.uid == os.getuid() else user.uid,
        gid=None if user.gid == os.getgid() else user.gid,
        groups=None if same_groups else list(user.groups),
    )


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _popen(
    request: SpawnRequest,
    stdin: int,
    output: tuple[int, int],
    *,
    process_group: int | None = None,
    new_session: bool = False,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.Popen[bytes]:
    identity = _identity_change(request.user)
    try:
        return subprocess.Popen(
            list(request.argv),
            stdin=stdin,
            stdout=output[0],
            stderr=output[1],
            env=dict(request.env),
            cwd=request.cwd,
            close_fds=True,
            user=identity.uid,
            group=identity.gid,
            extra_groups=identity.groups,
            process_group=process_group,
            start_new_session=new_session,
            preexec_fn=preexec_fn,
        )
    except ValueError as exc:  # embedded NUL bytes and the like
        raise InvalidProcessRequest(f"invalid process request: {exc}") from exc
    except OSError as exc:
        target = request.argv[0] if request.argv else ""
        raise SpawnFailed(f"error starting process '{target}': {exc.strerror}") from exc
    except subprocess.SubprocessError as exc:
        raise SpawnFailed(f"error starting process: {exc}") from exc


def _spawn_with_pipes(request: SpawnRequest) -> SpawnedChild:
    ours: list[int] = []
    theirs: list[int] = []
    try:
        if request.stdin:
            stdin_read, stdin_write = os.pipe()
            ours.append(stdin_write)
            theirs.append(stdin_read)
            child_stdin: int = stdin_read
        else:
            child_stdin = subprocess.DEVNULL
        stdout_read, stdout_write = os.pipe()
        ours.append(stdout_read)
        theirs.append(stdout_write)
        stderr_read, stderr_write = os.pipe()
        ours.append(stderr_read)
        theirs.append(stderr_write)
        popen = _popen(request, child_stdin, (stdout_write, stderr_write), process_group=0)
    except BaseException:
        _close_all(ours + theirs)
        raise
    _close_all(theirs)
    for fd in ours:
        os.set_blocking(fd, False)
    return SpawnedChild(
        popen=popen,
        pid=popen.pid,
        stdin_fd=ours[0] if request.stdin else None,
        stdout_fd=stdout_read,
        stderr_fd=stderr_read,
    )


def _spawn_with_pty(request: SpawnRequest, size: PtySize) -> SpawnedChild:
    master, slave = os.openpty()
    try:
        if size.cols and size.rows:
            set_window_size(master, size)
        try:
            os.fchown(slave, request.user.uid, -1)
        except OSError:
            pass  # only cosmetic (`ls -l $(tty)`); the child already holds the fd
        popen = _popen(
            request,
            slave,
            (slave, slave),
            new_session=True,
            preexec_fn=_take_controlling_terminal,
        )
    except BaseException:
        _close_all([master, slave])
        raise
    os.close(slave)
    os.set_blocking(master, False)
    return SpawnedChild(popen=popen, pid=popen.pid, pty_fd=master)


def spawn(request: SpawnRequest) -> SpawnedChild:
    """Start the process; raises `InvalidProcessRequest` or `SpawnFailed`."""
    if not request.argv or not request.argv[0]:
        raise InvalidProcessRequest("process.cmd must not be empty")
    if request.pty is not None:
        return _spawn_with_pty(request, request.pty)
    return _spawn_with_pipes(request)
