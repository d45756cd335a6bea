"""Code interpreter benchmark: the official `e2b-code-interpreter` SDK on `code-interpreter-v1`.

1. create → first result: `Sandbox.create()` + `run_code("1+1")` timed together, `kill()`
   untimed, after one untimed warm-up (`--runs`, `CORRAL_BENCH_N`, default 20). Issue target:
   p50 ≤ 500 ms.
2. warm round trip: `run_code("1+1")` on one live sandbox, once it settled after its first
   result (the default javascript kernel starts in the background then), in its default
   python context and in a context made by `create_code_context()`: 10 untimed calls, then
   `--calls` timed ones
   (`CORRAL_BENCH_N`, default 300). Issue target: p50 ≤ 10 ms. Baseline in the same run: the
   same `1+1` sent straight to an ipykernel on the host with jupyter_client (no sandbox, no
   HTTP), timed from `execute` to the kernel's `idle` status, with history off as in
   Corral's kernel; the kernel runs on the template's own Python environment (its layer is
   runnable on the host), driven by this file run with that interpreter in
   `--host-kernel-baseline` mode. Printed: the ratio Corral / baseline.
3. idle memory: `--held` sandboxes (`CORRAL_BENCH_N`, default 5), each having run `1+1`, held
   until their cgroups' memory stops moving; per sandbox: memory cgroup usage, PSS of its
   processes (server and kernels, the agent included) and the host's `MemAvailable` drop; and
   the PSS of one sandbox split by process (server, python kernel, deno kernel, agent, …).

Without the template on disk (`corral template build code-interpreter-v1`) every figure,
the baseline included, is reported unavailable with the reason. `measure_first_result`,
`measure_warm_roundtrip` and `measure_idle_memory` are the suite's pieces; `measure` runs all.

    /work/main/.venv/bin/python bench/code_interpreter.py [--runs 20] [--calls 300] [--held 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _harness as harness
import density
from _results import Latencies, measure_calls

__all__ = [
    "BASELINE_SERIES",
    "CONTEXT_SERIES",
    "DEFAULT_SERIES",
    "FIRST_RESULT_SERIES",
    "TEMPLATE",
    "IdleMemory",
    "InterpreterResults",
    "ProcessMemory",
    "TemplateUnavailable",
    "measure",
    "measure_first_result",
    "measure_host_kernel",
    "measure_idle_memory",
    "measure_warm_roundtrip",
    "print_results",
    "ratios",
    "template_python",
]

TEMPLATE = "code-interpreter-v1"
CODE = "1+1"
EXPECTED = "2"
WARMUP_CALLS = 10
RUN_TIMEOUT = 60.0  # seconds one execution may take before it counts as failed
SETTLED_SECONDS = 2  # a sandbox has settled when its memory stayed put this many seconds
VENV_PYTHON = Path("opt/corral/python/bin/python")  # inside the template's layers

FIRST_RESULT_SERIES = "code interpreter: create → first run_code(1+1)"
DEFAULT_SERIES = "code interpreter: run_code(1+1), default context"
CONTEXT_SERIES = "code interpreter: run_code(1+1), new context"
BASELINE_SERIES = "baseline: jupyter_client execute 1+1 → idle, ipykernel on the host"
ALL_SERIES = (FIRST_RESULT_SERIES, DEFAULT_SERIES, CONTEXT_SERIES, BASELINE_SERIES)

# How a process of a code-interpreter sandbox is labelled in the memory split: the first
# pattern its command line contains wins.
PROCESS_ROLES = (
    ("corral.interpreter.python_kernel", "python kernel"),
    ("ipykernel", "python kernel"),
    ("bash_kernel", "bash kernel"),
    ("IRkernel", "R kernel"),
    ("corral.interpreter", "code interpreter server"),
    ("deno", "deno kernel"),
)
# The baseline kernel gets the settings Corral's python kernel runs with that change the
# work of an execution (no history database), so the ratio is the cost of the path to it.
BASELINE_KERNEL_ARGS = ("--HistoryManager.enabled=False", "--InteractiveShell.colors=nocolor")


class TemplateUnavailable(Exception):
    """The `code-interpreter-v1` template is not built (or not runnable on this host)."""


@dataclass
class ProcessMemory:
    """One process of a sandbox: what it is, its command line (trimmed) and its PSS."""

    role: str
    command: str
    pss: int  # bytes


@dataclass
class IdleMemory:
    """Idle code-interpreter sandboxes, each after one `run_code("1+1")`."""

    requested: int
    held: int = 0
    stop_reason: str = ""
    unavailable: str | None = None
    settle_seconds: float = 0.0
    cgroup_memory: list[int] = field(default_factory=list)  # bytes per sandbox
    pss: list[int] = field(default_factory=list)  # bytes per sandbox (all its processes)
    mem_available_drop: int = 0  # bytes, before the first create -> all held and settled
    processes: list[ProcessMemory] = field(default_factory=list)  # of one sandbox

    def by_role(self) -> dict[str, int]:
        """PSS of the split sandbox summed per role (bytes)."""
        totals: dict[str, int] = {}
        for process in self.processes:
            totals[process.role] = totals.get(process.role, 0) + process.pss
        return totals


@dataclass
class InterpreterResults:
    """Everything this benchmark measured, or why it could not."""

    series: list[Latencies]
    memory: IdleMemory | None
    ratios: dict[str, float]  # Corral p50 / baseline p50, per warm series
    unavailable: str | None = None


# --- the template ---------------------------------------------------------------------------


def template_python(templates_dir: Path) -> Path:
    """The template's venv interpreter on the host (the top layer that has it), or raise
    `TemplateUnavailable` saying what is missing."""
    manifest = templates_dir / f"{TEMPLATE}.json"
    try:
        layers = json.loads(manifest.read_text())["layers"]
    except OSError as exc:
        raise TemplateUnavailable(
            f"template {TEMPLATE} is not built ({manifest}: {exc.strerror}); "
            f"build it with `corral template build {TEMPLATE}`"
        ) from exc
    except (ValueError, KeyError) as exc:
        raise TemplateUnavailable(f"{manifest} is not a template manifest: {exc}") from exc
    for layer in reversed(layers):
        candidate = templates_dir / "layers" / str(layer) / VENV_PYTHON
        if os.path.lexists(candidate):
            return candidate
    raise TemplateUnavailable(f"no layer of {manifest} has /{VENV_PYTHON}")


def _templates_dir(server: harness.CorralServer) -> Path:
    return server.templates_dir or harness.DEFAULT_TEMPLATES_DIR


# --- latency series -------------------------------------------------------------------------


def _sdk_sandbox() -> Any:
    """`e2b_code_interpreter.Sandbox`, imported late: the host-kernel baseline runs this file
    under the template's interpreter, which does not have the SDK."""
    from e2b_code_interpreter import Sandbox  # type: ignore[import-untyped]

    return Sandbox


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()[:300]


def _checked_run(sbx: Any, context: Any = None) -> None:
    """`run_code("1+1")`; raise unless it answered 2."""
    execution = sbx.run_code(CODE, context=context, timeout=RUN_TIMEOUT)
    if execution.error is not None or execution.text != EXPECTED:
        raise AssertionError(f"run_code({CODE!r}) gave {execution!r}")


def _series(name: str, n: int, one: Callable[[], float], warmup: int, note: str) -> Latencies:
    """`measure_calls` after `warmup` untimed calls; a failed warm-up makes the series
    unavailable with that reason (the server does not offer the capability yet)."""
    try:
        for _ in range(warmup):
            one()
    except Exception as exc:
        return Latencies(name, unavailable=_reason(exc), note=note)
    return measure_calls(name, n, one, note=note)


def measure_first_result(
    server: harness.CorralServer, n: int, ids: list[str], *, warmup: int = 1
) -> Latencies:
    """`Sandbox.create()` + first `run_code("1+1")`, `n` times; the kill is not timed."""
    note = f"{warmup} warm-up; sandbox killed after each run, untimed"
    try:
        template_python(_templates_dir(server))
    except TemplateUnavailable as exc:
        return Latencies(FIRST_RESULT_SERIES, unavailable=str(exc), note=note)
    with harness.environ(harness.sdk_env(server)):
        Sandbox = _sdk_sandbox()

        def one() -> float:
            start = time.perf_counter()
            sbx = Sandbox.create(timeout=120)
            ids.append(sbx.sandbox_id)
            try:
                _checked_run(sbx)
                return time.perf_counter() - start
            finally:
                sbx.kill()

        return _series(FIRST_RESULT_SERIES, n, one, warmup, note)


def measure_warm_roundtrip(
    server: harness.CorralServer, n: int, ids: list[str], *, warmup: int = WARMUP_CALLS
) -> list[Latencies]:
    """Warm `run_code("1+1")` on one sandbox (default context, then a new context) and the
    host-kernel baseline, `n` timed calls each after `warmup` untimed ones."""
    templates_dir = _templates_dir(server)
    baseline = measure_host_kernel(n, warmup, templates_dir)
    try:
        template_python(templates_dir)
    except TemplateUnavailable as exc:
        return [
            Latencies(DEFAULT_SERIES, unavailable=str(exc)),
            Latencies(CONTEXT_SERIES, unavailable=str(exc)),
            baseline,
        ]
    with harness.environ(harness.sdk_env(server)):
        Sandbox = _sdk_sandbox()

        try:
            sbx = Sandbox.create(timeout=600)
        except Exception as exc:
            reason = f"create failed: {_reason(exc)}"
            return [
                Latencies(DEFAULT_SERIES, unavailable=reason),
                Latencies(CONTEXT_SERIES, unavailable=reason),
                baseline,
            ]
        ids.append(sbx.sandbox_id)
        try:
            return [*_warm_series(sbx, n, warmup), baseline]
        finally:
            sbx.kill()


def _warm_series(sbx: Any, n: int, warmup: int) -> list[Latencies]:
    """The default-context and new-context series on `sbx`, once it has settled after its
    first result (so that kernels starting in the background are not timed along)."""
    try:
        _checked_run(sbx)
    except Exception as exc:
        reason = _reason(exc)
        return [
            Latencies(DEFAULT_SERIES, unavailable=reason),
            Latencies(CONTEXT_SERIES, unavailable=reason),
        ]
    settled = _wait_until_settled([sbx.sandbox_id])
    note = f"{warmup} warm-up calls; one sandbox, settled {settled:.1f} s after its first result"
    default = _series(DEFAULT_SERIES, n, lambda: _timed_run(sbx), warmup, note)
    try:
        context = sbx.create_code_context()
    except Exception as exc:
        reason = f"create_code_context() failed: {_reason(exc)}"
        return [default, Latencies(CONTEXT_SERIES, unavailable=reason)]
    context_note = note + "; context from create_code_context()"
    in_context = _series(CONTEXT_SERIES, n, lambda: _timed_run(sbx, context), warmup, context_note)
    return [default, in_context]


def _timed_run(sbx: Any, context: Any = None) -> float:
    start = time.perf_counter()
    _checked_run(sbx, context)
    return time.perf_counter() - start


def ratios(series: list[Latencies]) -> dict[str, float]:
    """Corral p50 / baseline p50 for each warm round-trip series that has both."""
    by_name = {item.name: item for item in series}
    baseline = by_name.get(BASELINE_SERIES)
    base = baseline.percentile(50) if baseline is not None else None
    found = {}
    for label, name in (("default context", DEFAULT_SERIES), ("new context", CONTEXT_SERIES)):
        mine = by_name[name].percentile(50) if name in by_name else None
        if mine is not None and base:
            found[label] = mine / base
    return found


# --- the host-kernel baseline ---------------------------------------------------------------


def measure_host_kernel(n: int, warmup: int, templates_dir: Path) -> Latencies:
    """`1+1` to a local ipykernel through jupyter_client, on the template's venv on the host.

    Runs this file with the template's interpreter (`--host-kernel-baseline`) in a private
    scratch directory for Jupyter's and IPython's files; it prints the samples as JSON.
    """
    note = (
        f"{warmup} warm-up calls; the template's venv run on the host, kernel over TCP, "
        "history off as in Corral's kernel"
    )
    try:
        python = template_python(templates_dir)
    except TemplateUnavailable as exc:
        return Latencies(BASELINE_SERIES, unavailable=str(exc), note=note)
    scratch = tempfile.mkdtemp(prefix="corral-bench-kernel-", dir="/tmp")
    try:
        output = _run_baseline_process(python, n, warmup, scratch)
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
        return Latencies(BASELINE_SERIES, unavailable=_reason(exc), note=note)
    finally:
        _kill_kernels_naming(scratch)
        shutil.rmtree(scratch, ignore_errors=True)
    result = Latencies(BASELINE_SERIES, note=note)
    result.samples = [float(value) for value in output["samples"]]
    result.attempts = len(result.samples)
    result.note += f"; kernel start {output['kernel_start'] * 1e3:.0f} ms"
    return result


def _run_baseline_process(python: Path, n: int, warmup: int, scratch: str) -> dict[str, Any]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "JUPYTER", "VIRTUAL_ENV", "E2B_"))
    }
    env.update(
        PYTHONDONTWRITEBYTECODE="1",  # never write into the template's layers
        PYTHONNOUSERSITE="1",
        JUPYTER_RUNTIME_DIR=f"{scratch}/runtime",
        JUPYTER_DATA_DIR=f"{scratch}/data",
        JUPYTER_CONFIG_DIR=f"{scratch}/config",
        IPYTHONDIR=f"{scratch}/ipython",
        MPLCONFIGDIR=f"{scratch}/matplotlib",
        HOME=scratch,
    )
    argv = [str(python), str(Path(__file__).resolve()), "--host-kernel-baseline"]
    argv += ["--calls", str(n), "--warmup", str(warmup)]
    proc = subprocess.Popen(
        argv,
        cwd=scratch,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=120 + n * RUN_TIMEOUT / 100)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise RuntimeError("the host-kernel baseline did not finish in time") from None
    if proc.returncode != 0:
        raise RuntimeError(
            f"the host-kernel baseline exited with {proc.returncode}: {stderr.strip()[-300:]}"
        )
    parsed: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return parsed


def _kill_kernels_naming(scratch: str) -> None:
    """Kill (by pid) any kernel the baseline process left behind: its connection file is in
    `scratch`, so its command line names it."""
    for pid in harness.live_descendants(os.getpid()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if scratch in cmdline:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _host_kernel_samples(n: int, warmup: int) -> dict[str, Any]:
    """Baseline mode (runs under the template's interpreter): start an ipykernel with
    jupyter_client, `warmup` + `n` executes of `1+1`, each timed until the kernel is idle."""
    from jupyter_client.manager import KernelManager

    begun = time.perf_counter()
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(extra_arguments=list(BASELINE_KERNEL_ARGS))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=RUN_TIMEOUT)
        kernel_start = time.perf_counter() - begun

        def one() -> float:
            start = time.perf_counter()
            msg_id = client.execute(CODE)
            text = None
            while True:
                message = client.get_iopub_msg(timeout=RUN_TIMEOUT)
                if message["parent_header"].get("msg_id") != msg_id:
                    continue
                kind = message["msg_type"]
                if kind == "execute_result":
                    text = message["content"]["data"].get("text/plain")
                elif kind == "status" and message["content"]["execution_state"] == "idle":
                    break
            elapsed = time.perf_counter() - start
            client.get_shell_msg(timeout=RUN_TIMEOUT)  # the execute_reply, untimed
            if text != EXPECTED:
                raise AssertionError(f"{CODE} gave {text!r}")
            return elapsed

        for _ in range(warmup):
            one()
        samples = [one() for _ in range(n)]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    return {"samples": samples, "kernel_start": kernel_start}


# --- idle memory ----------------------------------------------------------------------------


def measure_idle_memory(server: harness.CorralServer, held: int, ids: list[str]) -> IdleMemory:
    """Hold `held` sandboxes that each ran `1+1`, let them settle, measure, kill them."""
    result = IdleMemory(requested=held)
    try:
        template_python(_templates_dir(server))
    except TemplateUnavailable as exc:
        result.unavailable = str(exc)
        return result
    sandboxes: list[Any] = []
    with harness.environ(harness.sdk_env(server)):
        Sandbox = _sdk_sandbox()

        before = density.settled_mem_available()
        try:
            result.stop_reason = f"{held} held"
            for index in range(held):
                try:
                    sbx = Sandbox.create(timeout=600)
                    ids.append(sbx.sandbox_id)
                    sandboxes.append(sbx)
                    _checked_run(sbx)
                except Exception as exc:
                    if index == 0:
                        result.unavailable = _reason(exc)
                        return result
                    result.stop_reason = f"sandbox #{index + 1} failed: {_reason(exc)}"
                    break
            live = [sbx.sandbox_id for sbx in sandboxes]
            result.held = len(live)
            result.settle_seconds = _wait_until_settled(live)
            after = density.settled_mem_available()
            result.mem_available_drop = before - after
            cgroup = [density.cgroup_memory(sandbox_id) for sandbox_id in live]
            result.cgroup_memory = [value for value in cgroup if value is not None]
            pids = {
                sandbox_id: density.sandbox_pids(sandbox_id, server.run_dir) for sandbox_id in live
            }
            result.pss = [sum(density.pss(pid) for pid in pids[sandbox_id]) for sandbox_id in live]
            result.processes = [_process_memory(pid) for pid in pids[live[-1]]]
        finally:
            for sbx in sandboxes:
                try:
                    sbx.kill()
                except Exception:
                    pass
    return result


def _wait_until_settled(sandbox_ids: list[str], most: float = 30.0) -> float:
    """Wait until the sandboxes' summed cgroup memory moved by less than 0.5 % in each of
    `SETTLED_SECONDS` consecutive seconds (kernels started in the background, such as the
    default javascript one, are then up), at most `most` seconds; returns the seconds waited.
    Without readable cgroups (fake runtime) it waits `SETTLED_SECONDS`."""
    begun = time.perf_counter()

    def total() -> int | None:
        values = [density.cgroup_memory(sandbox_id) for sandbox_id in sandbox_ids]
        return None if None in values else sum(v for v in values if v is not None)

    previous = total()
    if previous is None:
        time.sleep(SETTLED_SECONDS)
        return time.perf_counter() - begun
    quiet = 0
    while quiet < SETTLED_SECONDS and time.perf_counter() - begun < most:
        time.sleep(1.0)
        current = total() or 0
        quiet = quiet + 1 if abs(current - previous) <= 0.005 * max(previous, 1) else 0
        previous = current
    return time.perf_counter() - begun


def _process_memory(pid: int) -> ProcessMemory:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        raw = b""
    command = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return ProcessMemory(_role(pid, command), command[:160], density.pss(pid))


def _role(pid: int, command: str) -> str:
    for pattern, role in PROCESS_ROLES:
        if pattern in command:
            return role
    if _pid_in_namespace(pid) == 1:
        return "agent (pid 1)"
    words = command.split()
    return f"other: {Path(words[0]).name}" if words else "other"


def _pid_in_namespace(pid: int) -> int | None:
    """The pid of `pid` in its innermost pid namespace (the last `NSpid` field)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    return None


# --- everything -----------------------------------------------------------------------------


def measure(
    server: harness.CorralServer, runs: int, calls: int, held: int, ids: list[str]
) -> InterpreterResults:
    """All three measurements; without the template, all unavailable with the reason."""
    try:
        template_python(_templates_dir(server))
    except TemplateUnavailable as exc:
        reason = str(exc)
        series = [Latencies(name, unavailable=reason) for name in ALL_SERIES]
        return InterpreterResults(series, None, {}, unavailable=reason)
    series = [measure_first_result(server, runs, ids)]
    series += measure_warm_roundtrip(server, calls, ids)
    memory = measure_idle_memory(server, held, ids) if held else None
    return InterpreterResults(series, memory, ratios(series))


def print_results(result: InterpreterResults) -> None:
    """The figures as lines: series, ratios, memory."""
    mib = density.MIB
    for series in result.series:
        print(series.line() + (f"  [{series.note}]" if series.note else ""))
    for label, ratio in result.ratios.items():
        print(f"ratio Corral / baseline p50, {label}: {ratio:.2f}x")
    memory = result.memory
    if memory is None:
        return
    if memory.unavailable is not None:
        print(f"idle memory: unavailable ({memory.unavailable})")
        return
    n = max(1, memory.held)
    print(
        f"idle memory: {memory.held} sandboxes held ({memory.stop_reason}), "
        f"settled after {memory.settle_seconds:.1f}s"
    )
    if memory.cgroup_memory:
        values = " ".join(f"{value / mib:.1f}" for value in memory.cgroup_memory)
        mean = sum(memory.cgroup_memory) / len(memory.cgroup_memory)
        print(f"memory cgroup usage per sandbox: {mean / mib:.2f} MiB (each: {values} MiB)")
    else:
        print("memory cgroup usage per sandbox: n/a (no sandbox memory cgroups)")
    values = " ".join(f"{value / mib:.1f}" for value in memory.pss)
    print(f"PSS per sandbox: {sum(memory.pss) / n / mib:.2f} MiB (each: {values} MiB)")
    print(f"MemAvailable drop per sandbox: {memory.mem_available_drop / n / mib:.2f} MiB")
    for role, pss in sorted(memory.by_role().items(), key=lambda item: -item[1]):
        count = sum(1 for process in memory.processes if process.role == role)
        print(f"  PSS of one sandbox, {role} ({count} process(es)): {pss / mib:.2f} MiB")


def _baseline_mode(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host-kernel-baseline", action="store_true")
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--warmup", type=int, required=True)
    args = parser.parse_args(argv)
    print(json.dumps(_host_kernel_samples(args.calls, args.warmup)))
    return 0


def main() -> int:
    if "--host-kernel-baseline" in sys.argv[1:]:
        return _baseline_mode(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=harness.bench_n(20), help="create runs")
    parser.add_argument("--calls", type=int, default=harness.bench_n(300), help="warm calls")
    parser.add_argument("--held", type=int, default=harness.bench_n(5), help="idle sandboxes")
    args = parser.parse_args()
    with harness.benchmark_server() as (server, ids):
        result = measure(server, args.runs, args.calls, args.held, ids)
    print(f"runtime={server.runtime} template={TEMPLATE} load={os.getloadavg()[0]:.2f}")
    print_results(result)
    memory = result.memory
    short = memory is not None and memory.unavailable is None and memory.held < memory.requested
    failed = short or any(series.failures for series in result.series)
    return harness.report_leaks(server, ids) or (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
