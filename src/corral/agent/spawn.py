"""Start a user process with pipes or a PTY, as a given user, at vfork speed.

`os.posix_spawn` (glibc: `clone(CLONE_VM|CLONE_VFORK)`) does the work; nothing ever waits
here: exit statuses are collected by the agent's SIGCHLD reaper. `subprocess.Popen` is not
used because CPython forks instead of vforking as soon as the uid, gid or groups change or a
`preexec_fn` is given, and copying the agent's page tables costs ~1 ms per command here.

How the identity change works without a fork: the agent (single-threaded, effective root)
briefly makes the target user its *real* uid/gid and supplementary groups, keeping its
effective and saved ids (root). `resetids=True` makes the child set its effective ids to
those real ids before exec, and `execve` then copies them into the saved ids and drops
every capability, so the process runs with exactly uid/gid/groups of the user and no way
back. The agent's own ids are restored right after the call.

Each process leads its own process group (pipes) or session (PTY). For a PTY the child
opens the slave by path after `setsid`, which makes it the controlling terminal. The cwd
is set by `chdir` in the agent around the spawn (there is no file action for it in 3.11).
All of the agent's own fds are close-on-exec, so the child gets exactly stdin/out/err.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import struct
import termios
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from corral.agent.errors import InvalidProcessRequest, SpawnFailed
from corral.agent.users import User
from corral.protocol.process_messages import PtySize

__all__ = ["SpawnRequest", "SpawnedChild", "set_window_size", "spawn", "spawn_detached"]

_DEFAULT_SEARCH_PATH = "/usr/local/bin:/usr/bin:/bin"
_CATCHABLE_SIGNALS = tuple(
    sig for sig in signal.valid_signals() if sig not in (signal.SIGKILL, signal.SIGSTOP)
)


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

    pid: int
    stdin_fd: int | None = None
    stdout_fd: int | None = None
    stderr_fd: int | None = None
    pty_fd: int | None = None


def set_window_size(fd: int, size: PtySize) -> None:
    """TIOCSWINSZ on a PTY fd; the kernel sends SIGWINCH to the foreground job."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size.rows, size.cols, 0, 0))


def _same_identity(user: User) -> bool:
    """Whether the agent already runs with `user`'s ids (the primary gid listed among the
    supplementary groups grants nothing extra, so it does not count)."""
    if (user.uid, user.uid) != os.getresuid()[:2] or (user.gid, user.gid) != os.getresgid()[:2]:
        return False
    return set(user.groups) - {user.gid} == set(os.getgroups()) - {user.gid}


@contextlib.contextmanager
def _real_identity(user: User) -> Iterator[bool]:
    """Make `user` the agent's real identity for the block; yields whether it changed."""
    if _same_identity(user):
        yield False
        return
    saved_uid, saved_gid, saved_groups = os.getresuid(), os.getresgid(), os.getgroups()

    def restore() -> None:
        os.setresuid(*saved_uid)  # first: the effective uid is still root
        os.setresgid(*saved_gid)
        os.setgroups(saved_groups)

    try:
        os.setgroups(list(user.groups))
        os.setresgid(user.gid, -1, -1)
        os.setresuid(user.uid, -1, -1)
    except OSError as exc:
        restore()
        raise SpawnFailed(f"cannot run as user '{user.name}': {exc.strerror}") from exc
    try:
        yield True
    finally:
        restore()


@contextlib.contextmanager
def _working_directory(path: str) -> Iterator[None]:
    previous = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            os.chdir(path)
        except OSError as exc:
            raise SpawnFailed(f"cannot change to directory '{path}': {exc.strerror}") from exc
        yield
    finally:
        os.fchdir(previous)
        os.close(previous)


def _executable(cmd: str, env: Mapping[str, str]) -> str:
    """`cmd` itself if it has a slash, else the first executable match in the env's PATH
    (checked with the real, i.e. target, ids, like execvp in the child would)."""
    if "/" in cmd:
        return cmd
    for directory in env.get("PATH", _DEFAULT_SEARCH_PATH).split(":"):
        candidate = os.path.join(directory or ".", cmd)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise SpawnFailed(f"error starting process '{cmd}': executable file not found in $PATH")


_ignored: tuple[int, ...] | None = None


def _ignored_signals() -> tuple[int, ...]:
    """Signals the agent ignores (e.g. SIGPIPE, as Python does): default again in the child.

    Read once, at the first spawn (the agent never changes them later: asyncio installs
    handlers, which exec resets anyway); `signal.getsignal` is too slow to ask per spawn.
    """
    global _ignored
    if _ignored is None:
        _ignored = tuple(
            sig for sig in _CATCHABLE_SIGNALS if signal.getsignal(sig) is signal.SIG_IGN
        )
    return _ignored


def _posix_spawn(
    request: SpawnRequest,
    file_actions: list[tuple[int, ...] | tuple[int, int, str, int, int]],
    *,
    new_session: bool,
) -> int:
    try:
        with _working_directory(request.cwd), _real_identity(request.user) as changed:
            executable = _executable(request.argv[0], request.env)
            argv, env, ignored = list(request.argv), dict(request.env), _ignored_signals()
            if new_session:
                return os.posix_spawn(
                    executable, argv, env, file_actions=file_actions, setsid=True,
                    resetids=changed, setsigmask=(), setsigdef=ignored,
                )  # fmt: skip
            return os.posix_spawn(
                executable, argv, env, file_actions=file_actions, setpgroup=0,
                resetids=changed, setsigmask=(), setsigdef=ignored,
            )  # fmt: skip
    except ValueError as exc:  # embedded NUL bytes, '=' in a variable name
        raise InvalidProcessRequest(f"invalid process request: {exc}") from exc
    except OSError as exc:
        raise SpawnFailed(
            f"error starting process '{request.argv[0]}': {exc.strerror or exc}"
        ) from exc


# `oom_score_adj` of every started process: when a sandbox hits its memory limit the kernel
# then kills one of its processes rather than the agent (which stays at 0). Raising the value
# needs no privilege; lowering below 0 would (CAP_SYS_RESOURCE on the host).
CHILD_OOM_SCORE_ADJ = b"500"


def _prefer_for_oom_kill(pid: int) -> None:
    """Make a started process the OOM killer's choice before the agent. Best effort (the few
    microseconds before it is set could only be spent in its own exec)."""
    try:
        fd = os.open(f"/proc/{pid}/oom_score_adj", os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.write(fd, CHILD_OOM_SCORE_ADJ)
    except OSError:
        pass
    finally:
        os.close(fd)


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _spawn_with_pipes(request: SpawnRequest) -> SpawnedChild:
    ours: list[int] = []
    theirs: list[int] = []
    actions: list[tuple[int, ...] | tuple[int, int, str, int, int]] = []
    try:
        if request.stdin:
            stdin_read, stdin_write = os.pipe()
            ours.append(stdin_write)
            theirs.append(stdin_read)
            actions.append((os.POSIX_SPAWN_DUP2, stdin_read, 0))
        else:
            actions.append((os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0))
        stdout_read, stdout_write = os.pipe()
        stderr_read, stderr_write = os.pipe()
        ours += [stdout_read, stderr_read]
        theirs += [stdout_write, stderr_write]
        actions.append((os.POSIX_SPAWN_DUP2, stdout_write, 1))
        actions.append((os.POSIX_SPAWN_DUP2, stderr_write, 2))
        pid = _posix_spawn(request, actions, new_session=False)
        _prefer_for_oom_kill(pid)
    except BaseException:
        _close_all(ours + theirs)
        raise
    _close_all(theirs)
    for fd in ours:
        os.set_blocking(fd, False)
    return SpawnedChild(
        pid=pid,
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
            os.fchown(slave, request.user.uid, -1)  # the child opens it as the user
        except OSError:
            pass  # the open below then fails with a clear error
        try:
            slave_path = os.ttyname(slave)
        except OSError as exc:
            raise SpawnFailed(f"cannot name the terminal: {exc.strerror}") from exc
        actions: list[tuple[int, ...] | tuple[int, int, str, int, int]] = [
            (os.POSIX_SPAWN_OPEN, 0, slave_path, os.O_RDWR, 0),
            (os.POSIX_SPAWN_DUP2, 0, 1),
            (os.POSIX_SPAWN_DUP2, 0, 2),
        ]
        pid = _posix_spawn(request, actions, new_session=True)
        _prefer_for_oom_kill(pid)
    except BaseException:
        _close_all([master, slave])
        raise
    os.close(slave)
    os.set_blocking(master, False)
    return SpawnedChild(pid=pid, pty_fd=master)


def spawn(request: SpawnRequest) -> SpawnedChild:
    """Start the process; raises `InvalidProcessRequest` or `SpawnFailed`."""
    if not request.argv or not request.argv[0]:
        raise InvalidProcessRequest("process.cmd must not be empty")
    if request.pty is not None:
        return _spawn_with_pty(request, request.pty)
    return _spawn_with_pipes(request)


def spawn_detached(
    argv: Sequence[str], env: Mapping[str, str], cwd: str, user: User, output_fd: int
) -> int:
    """Start a background process (its own process group) with stdin from /dev/null and
    stdout and stderr on `output_fd`; returns its pid. Raises `SpawnFailed`."""
    request = SpawnRequest(argv=argv, env=env, cwd=cwd, user=user, pty=None, stdin=False)
    actions: list[tuple[int, ...] | tuple[int, int, str, int, int]] = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, output_fd, 1),
        (os.POSIX_SPAWN_DUP2, output_fd, 2),
    ]
    pid = _posix_spawn(request, actions, new_session=False)
    _prefer_for_oom_kill(pid)
    return pid
