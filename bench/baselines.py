"""Baselines measured on the same machine in the same run, so the report can state ratios.

Each baseline times a one-shot `/bin/true` (start → exit) in a different kind of box:

* fork+exec: `/bin/true` itself (the floor);
* unshare: `unshare` with every namespace a Corral sandbox gets;
* bubblewrap: `bwrap --unshare-all` on a read-only bind of the host root;
* podman (runc): `podman run --rm --network=none` of an image imported from Corral's own
  `base` template rootfs, runc as OCI runtime (the "Docker container" of common
  comparisons); plus `podman exec` round trips into one running container;
* gVisor runsc: `runsc --network=none do /bin/true` (one-shot sandbox on the host root).

A baseline whose tool is missing or fails its first run is reported `unavailable` with the
reason, never dropped. Podman runs with private `--root`/`--runroot` directories that are
removed afterwards (with its image and containers), so no podman state is left on the host.

    /work/main/.venv/bin/python bench/baselines.py [--runs 50] [--slow-runs 10]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import _harness as harness
from _results import Latencies

__all__ = ["TEMPLATE", "measure_all", "rootfs_tar", "versions"]

TEMPLATE = "base"
IMAGE = "localhost/corral-bench-base:latest"
NPROC = 4096
BWRAP = ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/"]
BWRAP += ["--dev", "/dev", "--proc", "/proc", "/bin/true"]


def _failure_text(exc: BaseException) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        return f"exit status {exc.returncode}: {err.strip()[-300:] or '(no stderr)'}"
    return f"{type(exc).__name__}: {exc}"


def _run(argv: Sequence[str], timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, check=True, capture_output=True, timeout=timeout)


def _time_argv(name: str, argv: Sequence[str], n: int, note: str = "") -> Latencies:
    """`n` timed runs of `argv`; unavailable if the tool is missing or the first run fails."""
    result = Latencies(name, note=note)
    if shutil.which(argv[0]) is None:
        result.unavailable = f"`{argv[0]}` is not installed (bench/setup_baselines.sh installs it)"
        return result
    try:
        _run(argv)  # warm-up, and the proof that it runs here at all
    except (OSError, subprocess.SubprocessError) as exc:
        result.unavailable = f"`{' '.join(argv)}` fails here: {_failure_text(exc)}"
        return result
    return _time_runs(result, lambda: _run(argv), n)


def _time_runs(result: Latencies, one: Callable[[], object], n: int) -> Latencies:
    for _ in range(n):
        result.attempts += 1
        start = time.perf_counter()
        try:
            one()
        except (OSError, subprocess.SubprocessError) as exc:
            result.record_error(RuntimeError(_failure_text(exc)))
            continue
        result.samples.append(time.perf_counter() - start)
    return result


def _layers(templates_dir: Path, template: str) -> list[Path]:
    manifest = json.loads((templates_dir / f"{template}.json").read_text())
    return [templates_dir / "layers" / layer for layer in manifest["layers"]]


@contextlib.contextmanager
def rootfs_tar(templates_dir: Path, template: str) -> Iterator[subprocess.Popen[bytes]]:
    """A process writing a tar of the template's merged rootfs to its stdout.

    Several layers are merged by a read-only overlay mounted in a private mount namespace of
    the tar process (`unshare --mount`), so no mount ever appears on the host.
    """
    layers = _layers(templates_dir, template)
    workdir = Path(tempfile.mkdtemp(prefix="corral-bench-rootfs-"))
    if len(layers) == 1:
        argv = ["tar", "-C", str(layers[0]), "-c", "."]
    else:
        lower = ":".join(str(layer) for layer in reversed(layers))  # top layer first
        script = (
            f"mount -t overlay overlay -o ro,lowerdir={lower} {workdir} "
            f"&& exec tar -C {workdir} -c ."
        )
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        shutil.rmtree(workdir, ignore_errors=True)


class Podman:
    """Podman with private storage in a temporary directory, removed by `close()`."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="corral-bench-podman-"))
        self.base = ["podman", "--root", str(self.workdir / "root")]
        self.base += ["--runroot", str(self.workdir / "run"), "--tmpdir", str(self.workdir / "tmp")]
        self.base += ["--storage-driver", "overlay", "--cgroup-manager", "cgroupfs"]
        self.base += ["--events-backend", "none", "--runtime", "runc"]
        # Containers and conmon go under a cgroup parent of our own, removed by `close()`.
        self.cgroup_parent = f"/{self.workdir.name}"
        # Podman's default rlimits (nofile/nproc 1048576) exceed the hard limits of a host
        # without CAP_SYS_RESOURCE, where runc then fails with EPERM: ask for the caller's
        # nofile and a modest nproc (on the reference machine runc refused nproc 65536 even
        # under a hard limit of 96551).
        nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 1 << 20)
        nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], NPROC)
        self.limits = [
            "--ulimit",
            f"nofile={nofile}:{nofile}",
            "--ulimit",
            f"nproc={nproc}:{nproc}",
        ]
        self.limits += ["--cgroup-parent", self.cgroup_parent]

    def run_argv(self, *command: str) -> list[str]:
        return [*self.base, "run", "--rm", "--network=none", *self.limits, IMAGE, *command]

    def import_image(self, templates_dir: Path) -> float:
        """Import the template's rootfs as `IMAGE`; returns the seconds it took."""
        start = time.perf_counter()
        with rootfs_tar(templates_dir, TEMPLATE) as tar:
            assert tar.stdout is not None and tar.stderr is not None
            imported = subprocess.run(
                [*self.base, "import", "-", IMAGE], stdin=tar.stdout, capture_output=True
            )
            tar_err = tar.stderr.read()
            tar_status = tar.wait()
        if tar_status != 0:
            raise RuntimeError(f"tar of the {TEMPLATE} rootfs failed: {tar_err[-300:]!r}")
        if imported.returncode != 0:
            raise RuntimeError(f"podman import failed: {imported.stderr[-300:]!r}")
        return time.perf_counter() - start

    def close(self) -> list[str]:
        """Remove containers, image and storage; returns what could not be cleaned."""
        problems = []
        for argv in (
            [*self.base, "rm", "--all", "--force", "--time", "0"],
            [*self.base, "rmi", "--all", "--force"],
        ):
            done = subprocess.run(argv, capture_output=True, timeout=120)
            if done.returncode != 0:
                problems.append(f"{' '.join(argv[-3:])}: {done.stderr[-200:]!r}")
        for mount_point in _mounts_under(self.workdir):
            if subprocess.run(["umount", "-l", mount_point], capture_output=True).returncode:
                problems.append(f"could not unmount {mount_point}")
        shutil.rmtree(self.workdir, ignore_errors=True)
        for hierarchy in harness.CGROUP_ROOT.iterdir():
            top = hierarchy / self.cgroup_parent.lstrip("/")
            if top.is_dir():
                for directory in sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                    if directory.is_dir():
                        _rmdir(directory, problems)
                _rmdir(top, problems)
        return problems


def _rmdir(directory: Path, problems: list[str]) -> None:
    try:
        directory.rmdir()
    except OSError as exc:
        problems.append(f"cgroup {directory}: {exc}")


def _mounts_under(directory: Path) -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        if point.startswith(str(directory)):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def _podman(templates_dir: Path, n: int) -> list[Latencies]:
    run = Latencies("podman (runc) run --rm /bin/true")
    exec_ = Latencies("podman (runc) exec /bin/true")
    if shutil.which("podman") is None or shutil.which("runc") is None:
        reason = "`podman` or `runc` is not installed (bench/setup_baselines.sh installs them)"
        run.unavailable = exec_.unavailable = reason
        return [run, exec_]
    podman = Podman()
    try:
        try:
            seconds = podman.import_image(templates_dir)
            run.note = f"image imported from the `{TEMPLATE}` template rootfs in {seconds:.1f}s"
            _run(podman.run_argv("/bin/true"))
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            run.unavailable = exec_.unavailable = _failure_text(exc)
            return [run, exec_]
        _time_runs(run, lambda: _run(podman.run_argv("/bin/true")), n)
        try:
            started = _run(
                [
                    *podman.base,
                    "run",
                    "-d",
                    "--network=none",
                    *podman.limits,
                    IMAGE,
                    "sleep",
                    "3600",
                ]
            )
            container = started.stdout.decode().strip()
            _run([*podman.base, "exec", container, "/bin/true"])
        except (OSError, subprocess.SubprocessError) as exc:
            exec_.unavailable = _failure_text(exc)
            return [run, exec_]
        exec_.note = "into one running container; compare with the command round trip"
        _time_runs(exec_, lambda: _run([*podman.base, "exec", container, "/bin/true"]), n)
        return [run, exec_]
    finally:
        problems = podman.close()
        if problems:
            run.note += f"; clean-up problems: {problems}"


def _runsc(n: int) -> Latencies:
    root = Path(tempfile.mkdtemp(prefix="corral-bench-runsc-"))
    try:
        argv = ["runsc", "--root", str(root), "--network=none", "do", "/bin/true"]
        return _time_argv(
            "gVisor runsc do /bin/true", argv, n, note="one-shot sandbox on the host root, ptrace"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure_all(n: int, slow_n: int, templates_dir: Path) -> list[Latencies]:
    """Every baseline: `n` runs of the fast ones, `slow_n` of podman and runsc."""
    results = [
        _time_argv("fork+exec /bin/true", ["/bin/true"], n, note="the floor"),
        _time_argv("unshare (all namespaces) /bin/true", [*harness.UNSHARE_ALL, "/bin/true"], n),
        _time_argv("bubblewrap --unshare-all /bin/true", BWRAP, n),
    ]
    results += _podman(templates_dir, slow_n)
    results.append(_runsc(slow_n))
    return results


def versions() -> dict[str, str]:
    """The version line of each baseline tool (or why there is none)."""
    found = {}
    for tool, argv in (
        ("unshare", ["unshare", "--version"]),
        ("bubblewrap", ["bwrap", "--version"]),
        ("podman", ["podman", "--version"]),
        ("runc", ["runc", "--version"]),
        ("runsc", ["runsc", "--version"]),
    ):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
            found[tool] = out.strip().splitlines()[0] if out.strip() else "unknown"
        except OSError:
            found[tool] = "not installed"
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=harness.bench_n(100))
    parser.add_argument("--slow-runs", type=int, default=harness.bench_n(20))
    parser.add_argument("--templates-dir", type=Path, default=harness.DEFAULT_TEMPLATES_DIR)
    args = parser.parse_args()
    for tool, version in versions().items():
        print(f"{tool}: {version}")
    results = measure_all(args.runs, args.slow_runs, args.templates_dir)
    for result in results:
        print(result.line() + (f"  [{result.note}]" if result.note else ""))
    return 0 if all(r.unavailable is None and not r.failures for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
