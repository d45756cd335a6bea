"""The benchmark suite: every benchmark and baseline in one run, with a Markdown report.

    sudo .venv/bin/python bench/suite.py            # full run, ≤ 15 min on 2 cores
    sudo .venv/bin/python bench/suite.py --quick    # smaller N everywhere, < 2 min

Steps: install the baselines and matplotlib if missing (`bench/setup_baselines.sh`; skip
with `--no-setup`), start one `corral serve` with private directories, then measure through
the official `e2b` SDK (and Corral's own CLI): create → first output, command round trip,
PTY keystroke echo, bursts of concurrent creates, file transfer and the capabilities that
have landed, the code interpreter (`e2b-code-interpreter` SDK, with a host ipykernel
baseline), ListDir of 10k entries, preview URLs, idle density up to `--density-cap`; stop
the server and check it left nothing behind; networking (create cost, throughput, policy
update) on two servers of its own behind the tests' fake internet (runtime `namespaces`
only); run the baselines (fork+exec, unshare, bubblewrap, podman/runc, gVisor runsc).
Writes `results.json`, `report.md`, PNG plots and the server's log to `--out` (default
`bench/results/<UTC time>/`) and copies the report to `docs/benchmarks.md` (`--no-docs`
to skip). A step that crashes is reported in the report and makes the exit status 1; the
other steps still run.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import _harness as harness
import baselines
import burst_create
import capabilities
import code_interpreter
import command_roundtrip
import create_first_output
import density
import listdir
import network
import preview_proxy
import pty_echo
import report
from _results import to_json

__all__ = ["FULL", "QUICK", "Plan", "run_suite"]

REPO = harness.REPO


def _busy_fraction(interval: float) -> float:
    """Share of all CPUs' time not idle (nor waiting for I/O) over `interval` seconds."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as stat_file:
            fields = [int(value) for value in stat_file.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]

    total_before, idle_before = sample()
    time.sleep(interval)
    total_after, idle_after = sample()
    total = total_after - total_before
    return 0.0 if total <= 0 else 1 - (idle_after - idle_before) / total


def _settle(busy_below: float = 0.15, most: float = 30.0) -> float:
    """Wait until the machine is idle again (a killed sandbox's namespaces, subvolume and
    memory are released by kernel workers after the kill returns), at most `most` seconds;
    returns the seconds waited. Each step so measures Corral, not the previous step's tail."""
    begun = time.perf_counter()
    while time.perf_counter() - begun < most and _busy_fraction(0.5) >= busy_below:
        pass
    return time.perf_counter() - begun


STEPS: tuple[str, ...] = ("create", "cli", "roundtrip", "pty", "burst", "capabilities")
STEPS += ("code_interpreter", "file_transfer", "listdir", "preview", "density", "network")
STEPS += ("baselines",)


@dataclass(frozen=True)
class Plan:
    """How many runs each step makes."""

    create: int
    cli: int
    roundtrip: int
    pty: int
    bursts: tuple[int, ...]
    file_runs: dict[int, int]
    capability_runs: int
    interpreter_runs: int  # code interpreter: create → first run_code
    interpreter_calls: int  # code interpreter: warm run_code round trips per context
    interpreter_held: int  # code interpreter: idle sandboxes held for memory; 0: skip
    file_transfer_runs: int  # bench/file_transfer.py (with its 1 GiB memory run); 0: skip
    listdir: int
    preview: int  # GET round trips each way
    preview_downloads: int  # 100 MiB downloads each way
    network_creates: int  # per server and spacing
    network_policy_updates: int
    network_throughput_runs: int
    network_throughput_mib: int  # per throughput run
    density_cap: int
    unshare_memory: int
    baseline_runs: int
    slow_baseline_runs: int

    def scaled_to(self, runs: int) -> Plan:
        """Every run count capped at `runs` (smoke runs of the harness)."""
        return replace(
            self,
            create=min(self.create, runs),
            cli=min(self.cli, runs),
            roundtrip=min(self.roundtrip, runs),
            pty=min(self.pty, runs),
            bursts=tuple(sorted({min(size, runs) for size in self.bursts})),
            file_runs={size: min(n, runs) for size, n in self.file_runs.items()},
            capability_runs=min(self.capability_runs, runs),
            interpreter_runs=min(self.interpreter_runs, runs),
            interpreter_calls=min(self.interpreter_calls, runs),
            interpreter_held=min(self.interpreter_held, runs),
            file_transfer_runs=min(self.file_transfer_runs, runs),
            listdir=min(self.listdir, runs),
            preview=min(self.preview, runs),
            preview_downloads=min(self.preview_downloads, runs),
            network_creates=min(self.network_creates, runs),
            network_policy_updates=min(self.network_policy_updates, runs),
            network_throughput_runs=min(self.network_throughput_runs, runs),
            density_cap=min(self.density_cap, runs),
            unshare_memory=min(self.unshare_memory, runs),
            baseline_runs=min(self.baseline_runs, runs),
            slow_baseline_runs=min(self.slow_baseline_runs, runs),
        )


MIB = capabilities.MIB
FULL = Plan(
    create=200,
    cli=40,
    roundtrip=500,
    pty=300,
    bursts=burst_create.SIZES,
    file_runs={1 * MIB: 20, 100 * MIB: 3},
    capability_runs=10,
    interpreter_runs=20,
    interpreter_calls=300,
    interpreter_held=5,
    file_transfer_runs=3,
    listdir=50,
    preview=500,
    preview_downloads=5,
    network_creates=100,
    network_policy_updates=20,
    network_throughput_runs=3,
    network_throughput_mib=2048,
    density_cap=500,
    unshare_memory=100,
    baseline_runs=200,
    slow_baseline_runs=30,
)
QUICK = Plan(
    create=30,
    cli=5,
    roundtrip=100,
    pty=50,
    bursts=(10, 50),
    file_runs={1 * MIB: 5, 100 * MIB: 1},
    capability_runs=2,
    interpreter_runs=5,
    interpreter_calls=50,
    interpreter_held=2,
    file_transfer_runs=0,
    listdir=10,
    preview=50,
    preview_downloads=1,
    network_creates=10,
    network_policy_updates=5,
    network_throughput_runs=1,
    network_throughput_mib=256,
    density_cap=50,
    unshare_memory=20,
    baseline_runs=30,
    slow_baseline_runs=5,
)

METHOD = [
    "Corral runs as one `corral serve` subprocess (runtime `{runtime}`) with private state and "
    "run directories and the `base` template; the client is the official `e2b` Python SDK "
    "(sync API) in the suite's process, over HTTP/1.1 on loopback.",
    "Each step starts once the machine is idle again (all CPUs < 15% busy over 0.5 s, at "
    "most 30 s of waiting): the kernel releases a killed sandbox's namespaces, subvolume and "
    "memory after the kill returns, and that tail belongs to the step that caused it.",
    'create → first output (SDK): `Sandbox.create()` + `commands.run("echo hi")` timed '
    "together, `kill()` untimed; sequential, after a warm-up.",
    "create → first output (CLI): a new `corral sandbox run -- /bin/bash -l -c 'echo hi'` "
    "process per sample, timed from spawn to the first byte on its stdout (Python start-up "
    "included).",
    'command round trip: `commands.run("true")` on one live sandbox (a login bash runs `true`).',
    "PTY keystroke echo: one `pty.create()` shell; `pty.send_stdin()` of one key until its "
    "echo arrives on the PTY stream (a backspace, untimed, keeps the line empty).",
    'burst: N threads call `Sandbox.create()` + `commands.run("echo i")` at once.',
    "density: idle sandboxes created one by one until the cap, a failed create or low host "
    "memory; memory figures are taken with all of them held.",
    "files: `files.write` then `files.read` (bytes, checked) on one sandbox; throughput is "
    "size ÷ p50 in MB/s (10^6 bytes).",
    "code interpreter (`bench/code_interpreter.py`, official `e2b-code-interpreter` SDK, "
    'template `code-interpreter-v1`): `Sandbox.create()` + first `run_code("1+1")` timed '
    'together, `kill()` untimed; warm `run_code("1+1")` on one sandbox, once it settled '
    "after its first result, in its default context and in a `create_code_context()` "
    "context, after 10 warm-up calls; baseline: the "
    "same execute sent straight to an ipykernel on the host with jupyter_client (the "
    "template's own venv, history off as in Corral's kernel, no sandbox, no HTTP), timed "
    "until the kernel's idle status; idle memory: sandboxes that each ran `1+1`, held until "
    "their cgroups' memory settles.",
    "ListDir: `files.list()` of a directory of 10,000 empty files on one sandbox, after a "
    "warm-up (`bench/listdir.py`).",
    "preview URLs: a stdlib HTTP server on port 8080 of one sandbox; `GET /peer` and a "
    "100 MiB chunked download through `8080-<id>.corral.localhost` from the suite's process "
    "(httpx, keep-alive; and curl), and directly from a client inside the sandbox "
    "(`bench/preview_proxy.py`).",
    "network (`bench/network.py`): two more servers, one with networking behind the tests' "
    "fake internet (a network namespace with servers) and one with `--network off`; create = "
    "`POST /v2/sandboxes` until 201, deleted untimed, back-to-back and 0.2 s apart; what "
    "networking adds is the p50 difference; throughput = python3 in a sandbox sending N MiB "
    "over one TCP connection to a sink on the test host; policy update = `PUT "
    "/sandboxes/{id}/network` allowing the host a prober in the sandbox sends UDP to every "
    "~1 ms, timed to the prober's first echo.",
    "baselines: each runs `/bin/true` to completion as a new process from the suite, after "
    "one warm-up run; the server is stopped by then. podman uses private storage and an image "
    "imported from the same `base` rootfs; runsc uses the host root (`runsc do`).",
    "percentiles are nearest-rank over successful runs; a failed run counts against the "
    "success rate only.",
]


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _first(text: str, key: str, separator: str = ":") -> str:
    """The value of the first `key<separator>value` line of `text`."""
    for line in text.splitlines():
        name, sep, value = line.partition(separator)
        if sep and name.strip() == key:
            return value.strip().strip('"')
    return "unknown"


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def machine_info(runtime: str) -> dict[str, str]:
    mem_total = int(_first(_read("/proc/meminfo"), "MemTotal").split()[0]) * 1024
    cgroups = "v1 hybrid" if Path("/sys/fs/cgroup/memory").is_dir() else "v2"
    return {
        "cores": str(os.cpu_count()),
        "cpu": _first(_read("/proc/cpuinfo"), "model name"),
        "memory": f"{mem_total / 1024**3:.1f} GiB",
        "kernel": platform.release(),
        "os": _first(_read("/etc/os-release"), "PRETTY_NAME", "="),
        "cgroups": cgroups,
        "corral runtime": runtime,
    }


def software_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("corral", "e2b", "e2b-code-interpreter", "matplotlib"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    dirty = " (with uncommitted changes)" if _git("status", "--porcelain") else ""
    found["corral commit"] = _git("rev-parse", "--short", "HEAD") + dirty
    found.update(baselines.versions())
    return found


def _load() -> str:
    return _read("/proc/loadavg").split(" ")[0] or "?"


def _corral_steps(
    server: harness.CorralServer,
    plan: Plan,
    results: dict[str, Any],
    step: Callable[[str, Callable[[], None]], None],
    ids: list[str],
) -> None:
    """Every step that measures Corral itself, on one running server."""
    corral = results["corral"]
    step(
        "create",
        lambda: corral.append(create_first_output.measure_sdk(server, plan.create, 3, ids)),
    )
    step("cli", lambda: corral.append(create_first_output.measure_cli(server, plan.cli, 1)))
    step(
        "roundtrip",
        lambda: corral.append(command_roundtrip.measure(server, plan.roundtrip, 10, ids)),
    )
    step("pty", lambda: corral.append(pty_echo.measure(server, plan.pty, 5, ids)))
    step(
        "burst",
        lambda: results["bursts"].extend(burst_create.measure(server, plan.bursts, ids)),
    )

    def capability_steps() -> None:
        found = results["capabilities"]
        found += capabilities.measure_files(server, plan.file_runs, ids)
        found += capabilities.measure_pause_resume(server, plan.capability_runs, ids)
        found.append(capabilities.measure_fork(server, plan.capability_runs, ids))

    step("capabilities", capability_steps)
    step(
        "code_interpreter",
        lambda: results.update(
            code_interpreter=code_interpreter.measure(
                server, plan.interpreter_runs, plan.interpreter_calls, plan.interpreter_held, ids
            )
        ),
    )
    if plan.file_transfer_runs:
        step(
            "file_transfer",
            lambda: results.update(
                file_transfer=_file_transfer(server, plan.file_transfer_runs, ids)
            ),
        )

    step("listdir", lambda: results["listdir"].append(listdir.measure(server, plan.listdir, ids)))
    step(
        "preview",
        lambda: results["preview"].extend(
            preview_proxy.series(
                preview_proxy.measure(server, plan.preview, ids, plan.preview_downloads)
            )
        ),
    )

    def density_step() -> None:
        measured = density.measure(
            server, plan.density_cap, ids, baseline_count=plan.unshare_memory
        )
        results["density"] = measured
        corral.append(measured.create)

    step("density", density_step)


def run_suite(
    plan: Plan, out_dir: Path, steps: set[str], templates_dir: Path, *, mode: str, command: str
) -> tuple[dict[str, Any], int]:
    """Run the selected steps, write the report; returns the results and the exit status."""
    if not plan.file_transfer_runs:
        steps = steps - {"file_transfer"}
    started = datetime.datetime.now(datetime.UTC)
    clock = time.perf_counter()
    load_before = _load()
    results: dict[str, Any] = {
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "mode": mode,
        "command": command,
        "skipped": sorted(set(STEPS) - steps),
        "machine": machine_info(harness.runtime_name()),
        "versions": software_versions(),
        "corral": [],
        "bursts": [],
        "density": None,
        "capabilities": [],
        "code_interpreter": None,
        "file_transfer": None,
        "listdir": [],
        "preview": [],
        "network": None,
        "baselines": [],
        "errors": {},
        "leaks": [],
    }
    results["method"] = [item.replace("{runtime}", harness.runtime_name()) for item in METHOD]

    def step(name: str, action: Callable[[], None]) -> None:
        if name not in steps:
            return
        print(f"==> {name}", flush=True)
        waited = _settle()
        if waited > 1:
            print(f"    waited {waited:.1f}s for the previous step's clean-up", flush=True)
        begun = time.perf_counter()
        try:
            action()
        except Exception as exc:
            traceback.print_exc()
            results["errors"][name] = f"{type(exc).__name__}: {exc}"[:500]
        print(f"    {name}: {time.perf_counter() - begun:.1f}s", flush=True)

    harness.become_subreaper()
    server = harness.CorralServer()
    ids: list[str] = []
    try:
        server.start()
    except harness.ServerStartError as exc:
        results["errors"]["server"] = f"corral serve did not start: {str(exc)[-400:]}"
        if server.log_path.exists():
            shutil.copyfile(server.log_path, out_dir / "server.log")
        server.remove_workdir()
    else:
        try:
            _corral_steps(server, plan, results, step, ids)
        finally:
            server.stop()
            shutil.copyfile(server.log_path, out_dir / "server.log")
        leaks = harness.wait_no_leaks(ids, [server.state_dir, server.run_dir])
        leaks += harness.describe_pids(harness.live_descendants(os.getpid()))
        results["leaks"] = leaks
        if not leaks:
            server.remove_workdir()
    step("network", lambda: results.update(network=_network(plan, results["leaks"])))
    step(
        "baselines",
        lambda: results["baselines"].extend(
            baselines.measure_all(plan.baseline_runs, plan.slow_baseline_runs, templates_dir)
        ),
    )
    results["duration_s"] = time.perf_counter() - clock
    results["load_note"] = (
        f"1-minute load average {load_before} at the start and {_load()} at the end, on "
        f"{os.cpu_count()} cores: other work on the machine inflates every figure."
    )
    plain: dict[str, Any] = to_json(results)
    report.write_report(plain, out_dir)
    return plain, 1 if results["errors"] or results["leaks"] else 0


def _file_transfer(server: harness.CorralServer, n: int, ids: list[str]) -> dict[str, Any]:
    """`bench/file_transfer.py` (upload variants, RSS during 1 GiB), or why it is missing."""
    try:
        import file_transfer
    except ImportError as exc:
        return {"unavailable": f"bench/file_transfer.py cannot be imported: {exc}"}
    measured = file_transfer.measure(server, n, ids)
    return {"runs": n, "throughput": measured.throughput, "memory": measured.memory}


def _network(plan: Plan, leaks: list[str]) -> dict[str, Any]:
    """`bench/network.py` on servers of its own (adds what they left to `leaks`)."""
    if harness.runtime_name() != "namespaces":
        return {"unavailable": f"needs runtime namespaces, not {harness.runtime_name()}"}
    measured = network.measure(
        plan.network_creates,
        plan.network_policy_updates,
        plan.network_throughput_runs,
        plan.network_throughput_mib,
    )
    leaks += measured.leaks + harness.describe_pids(harness.live_descendants(os.getpid()))
    plain: dict[str, Any] = to_json(measured)
    return plain


def _docs_copy(results: dict[str, Any], out_dir: Path) -> Path:
    docs = REPO / "docs" / "benchmarks.md"
    prefix = os.path.relpath(out_dir, docs.parent) + "/"
    header = (
        "<!-- Written by bench/suite.py: the report of the latest run, "
        f"{os.path.relpath(out_dir, REPO)}/report.md. Do not edit by hand. -->\n\n"
    )
    docs.write_text(header + report.render(results, image_prefix=prefix))
    return docs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small N everywhere (< 2 min)")
    parser.add_argument("--out", type=Path, help="default: bench/results/<UTC time>/")
    parser.add_argument("--density-cap", type=int, help="idle sandboxes to hold (full: 500)")
    parser.add_argument("--runs", type=int, help="cap every run count (smoke runs)")
    parser.add_argument("--skip", default="", help=f"comma list of steps to skip: {STEPS}")
    parser.add_argument("--no-setup", action="store_true", help="do not install baselines")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--templates-dir", type=Path, default=harness.DEFAULT_TEMPLATES_DIR)
    args = parser.parse_args()
    skip = {name for name in args.skip.split(",") if name}
    if skip - set(STEPS):
        parser.error(f"unknown step(s) {sorted(skip - set(STEPS))}; steps are {STEPS}")
    plan = QUICK if args.quick else FULL
    if args.runs is not None:
        plan = plan.scaled_to(args.runs)
    if args.density_cap is not None:
        plan = replace(plan, density_cap=args.density_cap)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    out_dir = args.out or REPO / "bench" / "results" / stamp
    out_dir.mkdir(parents=True, exist_ok=True)
    if not args.no_setup:
        print("==> setup (bench/setup_baselines.sh)", flush=True)
        subprocess.run(["bash", str(REPO / "bench" / "setup_baselines.sh")], check=False)
    results, status = run_suite(
        plan,
        out_dir,
        set(STEPS) - skip,
        args.templates_dir,
        mode="quick" if args.quick else "full",
        command=shlex.join([".venv/bin/python", "bench/suite.py", *sys.argv[1:]]),
    )
    if not args.no_docs:
        print(f"docs: {_docs_copy(results, out_dir)}")
    network_series = (results["network"] or {}).get("series", [])
    interpreter = results["code_interpreter"] or {}
    for series in (
        results["corral"]
        + results["capabilities"]
        + interpreter.get("series", [])
        + results["listdir"]
        + results["preview"]
        + network_series
        + results["baselines"]
    ):
        if series.get("unavailable"):
            print(f"{series['name']}: unavailable ({series['unavailable']})")
        elif series.get("p50") is not None:
            print(
                f"{series['name']}: p50 {series['p50'] * 1e3:.2f}ms p99 {series['p99'] * 1e3:.2f}ms"
                f" runs {series['attempts']} success {series['success_rate'] * 100:.0f}%"
            )
    for name, value in (results["network"] or {}).get("figures", {}).items():
        print(f"{name}: {value:.2f}")
    for label, ratio in interpreter.get("ratios", {}).items():
        print(f"code interpreter warm run_code p50 / host ipykernel p50, {label}: {ratio:.2f}x")
    for problem in [*results["errors"].items(), *results["leaks"]]:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    print(f"report: {out_dir / 'report.md'} ({results['duration_s']:.0f}s)")
    return status


if __name__ == "__main__":
    sys.exit(main())
