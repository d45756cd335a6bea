"""Shared plumbing of the benchmarks and of the end-to-end test fixtures.

* `CorralServer` starts `corral serve` as a subprocess on a free port with private state and
  run directories, waits until it answers HTTP, and stops it (SIGTERM, then SIGKILL by pid).
* `find_leaks` lists what a stopped (or still running) server left on the host for a set of
  sandbox ids: processes, mounts, cgroups and per-sandbox directories.
* `benchmark_server` runs the server of one benchmark; `report_leaks` checks what it left.
* `percentiles` / `format_latencies` summarise latency samples.

The benchmarks import this file as `_harness` (their own directory is on `sys.path` when run
as `python bench/X.py`); `tests/conftest.py` imports it the same way, so the fixture and the
benchmarks start the server identically and this module cannot rot unnoticed.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CORRAL_BIN",
    "DEFAULT_TEMPLATES_DIR",
    "HOST_ONLY_ENV",
    "CorralServer",
    "ServerStartError",
    "UNSHARE_ALL",
    "all_corral_cgroups",
    "bench_n",
    "become_subreaper",
    "benchmark_server",
    "cgroup_dirs",
    "describe_pids",
    "environ",
    "find_leaks",
    "format_latencies",
    "free_port",
    "live_descendants",
    "percentiles",
    "report_leaks",
    "runtime_name",
    "sdk_env",
    "time_command",
    "wait_no_leaks",
    "warmup_count",
]

REPO = Path(__file__).resolve().parent.parent
CORRAL_BIN = REPO / ".venv" / "bin" / "corral"
DEFAULT_TEMPLATES_DIR = Path("/var/lib/corral/templates")
CGROUP_ROOT = Path("/sys/fs/cgroup")
# Set in the server's environment; a sandbox must never see it (protocol doc §5.3).
HOST_ONLY_ENV = "CORRAL_TEST_HOST_ONLY"
PR_SET_CHILD_SUBREAPER = 36
# The isolation baseline: `unshare` with every namespace a sandbox gets (append the command).
UNSHARE_ALL = ["unshare", "--fork", "--pid", "--mount", "--net", "--uts", "--ipc", "--user"]


class ServerStartError(Exception):
    """`corral serve` exited or did not answer in time; the message holds its log tail."""


def runtime_name() -> str:
    """The runtime under test: env `CORRAL_TEST_RUNTIME`, default `namespaces`."""
    return os.environ.get("CORRAL_TEST_RUNTIME", "namespaces")


def bench_n(default: int) -> int:
    """Iteration count of a benchmark: env `CORRAL_BENCH_N` overrides `default`."""
    raw = os.environ.get("CORRAL_BENCH_N")
    return int(raw) if raw else default


def warmup_count(n: int, most: int) -> int:
    """Unrecorded calls before `n` measured ones: a tenth of `n`, at least 1, at most `most`."""
    return max(1, min(most, n // 10))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class CorralServer:
    """One `corral serve` subprocess with private state and run directories."""

    runtime: str = field(default_factory=runtime_name)
    host: str = "127.0.0.1"
    templates_dir: Path | None = None  # None: the server's default templates dir
    start_timeout: float = 60.0
    stop_timeout: float = 20.0
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="corral-test-")))
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    extra_args: Sequence[str] = ()
    """More `corral serve` options (e.g. `--uplink-netns`)."""

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    @property
    def run_dir(self) -> Path:
        return self.workdir / "run"

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        argv = [
            str(CORRAL_BIN),
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--runtime",
            self.runtime,
            "--state-dir",
            str(self.state_dir),
            "--run-dir",
            str(self.run_dir),
        ]
        if self.templates_dir is not None:
            argv += ["--templates-dir", str(self.templates_dir)]
        return argv + list(self.extra_args)

    def start(self) -> None:
        """Start the server and return once it answers HTTP (any status counts)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        env = dict(os.environ)
        env[HOST_ONLY_ENV] = "host-secret"
        for name in ("CORRAL_STATE_DIR", "CORRAL_RUN_DIR"):
            env.pop(name, None)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.workdir,
            )
        self.wait_ready()

    def wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerStartError(
                    f"corral serve exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if self._answers():
                return
            time.sleep(0.05)
        self.stop()
        raise ServerStartError(
            f"corral serve did not answer within {self.start_timeout}s:\n{self.log_tail()}"
        )

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # an HTTP error status is still an answer
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after `stop_timeout`. Returns the exit status."""
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        return proc.returncode

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "<no server log>"
        return "\n".join(text.splitlines()[-lines:])

    def remove_workdir(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> CorralServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def sdk_env(server: CorralServer) -> dict[str, str]:
    """The environment variables that point the E2B SDK at `server`."""
    return {
        "E2B_API_URL": server.url,
        "E2B_SANDBOX_URL": server.url,
        "E2B_API_KEY": "e2b_corral_test",
    }


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


# --- statistics -----------------------------------------------------------------------------


def percentiles(
    samples: Sequence[float], points: Iterable[float] = (50, 95, 99)
) -> dict[float, float]:
    """Nearest-rank percentiles of `samples` (any unit)."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    result = {}
    for point in points:
        rank = max(1, min(len(ordered), math.ceil(point / 100 * len(ordered))))
        result[point] = ordered[rank - 1]
    return result


def format_latencies(name: str, seconds: Sequence[float]) -> str:
    """One line: `name: n=.. p50=..ms p95=..ms p99=..ms mean=..ms`."""
    pct = percentiles(seconds)
    mean = sum(seconds) / len(seconds)
    return (
        f"{name}: n={len(seconds)} p50={pct[50] * 1e3:.2f}ms p95={pct[95] * 1e3:.2f}ms "
        f"p99={pct[99] * 1e3:.2f}ms mean={mean * 1e3:.2f}ms"
    )


def time_command(argv: Sequence[str], n: int) -> list[float]:
    """Wall-clock latency of running `argv` to completion, `n` times."""
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return samples


# --- leak detection -------------------------------------------------------------------------


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _proc_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _is_zombie(pid: int) -> bool:
    stat = _read(Path(f"/proc/{pid}/stat"))
    # Field 3 follows the parenthesised command name, which may itself contain spaces.
    return stat[stat.rfind(")") + 2 : stat.rfind(")") + 3] in ("Z", "X", "")


def _cmdline(pid: int) -> str:
    return _read(Path(f"/proc/{pid}/cmdline")).replace("\0", " ").strip()


def cgroup_dirs(sandbox_id: str) -> list[Path]:
    """Existing cgroup directories of a sandbox, v1 (`<ctrl>/corral/<id>`) and v2."""
    found = [path for path in CGROUP_ROOT.glob(f"*/corral/{sandbox_id}") if path.is_dir()]
    v2 = CGROUP_ROOT / "corral" / sandbox_id
    if v2.is_dir():
        found.append(v2)
    return found


def all_corral_cgroups() -> set[Path]:
    """Every per-sandbox cgroup directory on the host, whoever made it."""
    return {
        path
        for pattern in ("*/corral/*", "corral/*")
        for path in CGROUP_ROOT.glob(pattern)
        if path.is_dir() and re.fullmatch(r"[a-z0-9]{20}", path.name)
    }


def find_leaks(
    sandbox_ids: Iterable[str],
    dirs: Sequence[Path],
    *,
    extra_cgroups: Iterable[Path] = (),
    server_running: bool = False,
) -> list[str]:
    """What is left on the host for `sandbox_ids` or under `dirs`; empty when clean.

    Checks processes (cgroup membership or a command line naming a sandbox id or one of
    `dirs`), mounts (`/proc/self/mountinfo`), cgroups, and per-sandbox directories
    `<dir>/sandboxes/*`. `extra_cgroups` are reported if they still exist (used for the
    strict mode that checks every Corral cgroup created during a run). With
    `server_running`, processes naming `dirs` (the server and its helpers) and server-wide
    mounts under `dirs` (outside `<dir>/sandboxes/`) are allowed.
    """
    ids = sorted(set(sandbox_ids))
    dir_texts = [str(d) for d in dirs]
    leaks: list[str] = []
    me = os.getpid()
    id_pattern = re.compile("|".join(re.escape(i) for i in ids)) if ids else None
    for pid in _proc_pids():
        if pid == me or _is_zombie(pid):
            continue
        cmdline = _cmdline(pid)
        cgroups = _read(Path(f"/proc/{pid}/cgroup"))
        in_sandbox_cgroup = id_pattern is not None and any(
            "/corral/" in line and id_pattern.search(line) for line in cgroups.splitlines()
        )
        names_dir = not server_running and any(text in cmdline for text in dir_texts)
        names_us = names_dir or (id_pattern is not None and id_pattern.search(cmdline) is not None)
        if in_sandbox_cgroup or names_us:
            leaks.append(f"process {pid}: {cmdline[:200]!r}")
    for line in _read(Path("/proc/self/mountinfo")).splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        mount_point = fields[4].replace("\\040", " ")
        # While the server runs it may keep server-wide mounts of its own under `dirs`.
        prefixes = [f"{text}/sandboxes/" for text in dir_texts] if server_running else dir_texts
        if any(mount_point.startswith(prefix) for prefix in prefixes) or (
            id_pattern is not None and id_pattern.search(mount_point)
        ):
            leaks.append(f"mount {mount_point}")
    cgroups_left = {path for sid in ids for path in cgroup_dirs(sid)}
    cgroups_left |= {path for path in extra_cgroups if path.is_dir()}
    leaks.extend(f"cgroup {path}" for path in sorted(cgroups_left))
    for base in dirs:
        sandboxes = base / "sandboxes"
        if sandboxes.is_dir():
            leaks.extend(f"directory {entry}" for entry in sorted(sandboxes.iterdir()))
    return leaks


def wait_no_leaks(
    sandbox_ids: Iterable[str],
    dirs: Sequence[Path],
    *,
    timeout: float = 10.0,
    extra_cgroups: Iterable[Path] = (),
    server_running: bool = False,
) -> list[str]:
    """`find_leaks`, retried until clean or `timeout` (teardown may be asynchronous)."""
    ids = list(sandbox_ids)
    extra = list(extra_cgroups)
    deadline = time.monotonic() + timeout
    while True:
        leaks = find_leaks(ids, dirs, extra_cgroups=extra, server_running=server_running)
        if not leaks or time.monotonic() >= deadline:
            return leaks
        time.sleep(0.2)


def live_descendants(root_pid: int) -> list[int]:
    """Non-zombie processes whose parent chain reaches `root_pid` (excluding it)."""
    parents: dict[int, int] = {}
    for pid in _proc_pids():
        stat = _read(Path(f"/proc/{pid}/stat"))
        tail = stat[stat.rfind(")") + 2 :].split()
        if len(tail) >= 2:
            parents[pid] = int(tail[1])
    found = []
    for pid in parents:
        cursor = pid
        seen = set()
        while cursor in parents and cursor not in seen and cursor > 1:
            seen.add(cursor)
            cursor = parents[cursor]
            if cursor == root_pid:
                if not _is_zombie(pid):
                    found.append(pid)
                break
    return sorted(found)


def describe_pids(pids: Iterable[int]) -> list[str]:
    return [f"process {pid}: {_cmdline(pid)[:200]!r}" for pid in pids]


def become_subreaper() -> bool:
    """Make orphaned descendants reparent to this process (prctl PR_SET_CHILD_SUBREAPER), so
    `live_descendants(os.getpid())` also finds processes that escaped their parent."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


@contextlib.contextmanager
def benchmark_server() -> Iterator[tuple[CorralServer, list[str]]]:
    """The server of one benchmark, started, and the list the benchmark adds the id of every
    sandbox it creates to; the server is stopped on leaving the block. This process becomes
    a subreaper first, so that `report_leaks(server, ids)`, called after the block, also
    finds processes that escaped their parent."""
    become_subreaper()
    server = CorralServer()
    server.start()
    ids: list[str] = []
    try:
        yield server, ids
    finally:
        server.stop()


def report_leaks(server: CorralServer, sandbox_ids: Iterable[str]) -> int:
    """End of a benchmark: print leaks to stderr and return the exit status (0 when clean).

    Call after `server.stop()` and after every helper process of the benchmark ended.
    """
    leaks = wait_no_leaks(sandbox_ids, [server.state_dir, server.run_dir])
    leaks += describe_pids(live_descendants(os.getpid()))
    if leaks:
        print("LEAKS:\n  " + "\n  ".join(leaks), file=sys.stderr)
        print(f"server log: {server.log_path}", file=sys.stderr)
        return 1
    server.remove_workdir()
    return 0
