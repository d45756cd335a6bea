"""Smoke runs of the benchmarks with tiny N, so the harness cannot rot.

* every benchmark script runs end to end on its own (`CORRAL_BENCH_N=3`; `network.py`
  only inside the suite, with small counts);
* `bench/suite.py --quick`, capped at 3 runs per series and 3 held sandboxes, runs every
  step (baselines included, with whatever is installed), exits 0, writes the report, the
  JSON and (with matplotlib) the plots, reports each baseline as measured or unavailable
  with a reason, measures files, ListDir, preview URLs and networking with every run
  succeeding, and leaves no podman or runsc state behind;
* the report puts the issues' targets next to the figures, with whether they were met;
* `bench/code_interpreter.py` runs with tiny counts (< 60 s; skipped without the
  `code-interpreter-v1` template, except in CI) and the report shows its targets, its ratio
  against the host-kernel baseline and its memory split.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import _harness as harness  # bench/ (tests/conftest.py puts it on sys.path)
import code_interpreter
import report

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"

BASELINES = ("fork+exec", "unshare", "bubblewrap", "podman (runc) run", "podman (runc) exec")
BASELINES += ("gVisor runsc",)
MIB = report.MIB


def _run(argv: list[str], timeout: float, **env: str) -> str:
    environment = dict(os.environ, **env)
    for name in ("E2B_API_URL", "E2B_SANDBOX_URL"):  # the bench starts its own server
        environment.pop(name, None)
    # Own session, so a hung benchmark is killed together with the server it started.
    proc = subprocess.Popen(
        [sys.executable, *argv],
        cwd=REPO,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"{argv} hung; stdout:\n{stdout}\nstderr:\n{stderr}")
    assert proc.returncode == 0, f"stdout:\n{stdout}\nstderr:\n{stderr}"
    return stdout


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("create_first_output.py", ["(e2b SDK): n=3", "(corral CLI): n=1", "throughput:"]),
        ("command_roundtrip.py", ["command round trip: n=3", "success=3/3", "baseline fork+exec"]),
        ("idle_memory.py", ["idle sandboxes=3", "MemAvailable drop per sandbox:", "PSS"]),
        ("burst_create.py", ["burst n=3:", "failures=0", "per-create: n=3"]),
        ("pty_echo.py", ["PTY keystroke echo: n=3", "success=3/3"]),
        ("density.py", ["held=3 (cap of 3 reached)", "memory cgroups before:", "answering"]),
        ("capabilities.py", ["file upload 1 MiB", "file download 100 MiB", "fork"]),
        ("preview_proxy.py", ["round trip, preview: n=3", "100 MiB download, direct"]),
        ("listdir.py", ["files.list() of 10,000 entries: n=3", "success=3/3", "`ls -l`"]),
    ],
)
def test_benchmark_runs(script: str, expected: list[str]) -> None:
    stdout = _run([str(BENCH / script)], 120, CORRAL_BENCH_N="3")
    for text in expected:
        assert text in stdout, stdout


def _corral_bench_leftovers() -> set[str]:
    """Temporary dirs and cgroups that the podman and runsc baselines make and remove."""
    found = {str(p) for p in Path("/tmp").glob("corral-bench-*")}
    found |= {str(p) for p in Path("/sys/fs/cgroup").glob("*/corral-bench-*")}
    return found


def test_quick_suite_writes_a_complete_report(tmp_path: Path) -> None:
    before = _corral_bench_leftovers()
    out = tmp_path / "run"
    stdout = _run(
        [str(BENCH / "suite.py"), "--quick", "--runs", "3", "--no-setup", "--no-docs"]
        + ["--out", str(out)],
        240,
    )
    assert f"report: {out / 'report.md'}" in stdout
    results = json.loads((out / "results.json").read_text())
    assert results["errors"] == {} and results["leaks"] == []
    names = [series["name"] for series in results["corral"]]
    for wanted in ("(e2b SDK)", "(corral CLI)", "round trip", "PTY", "density"):
        assert any(wanted in name for name in names), names
    for series in results["corral"]:
        assert series["attempts"] == 3 and series["success_rate"] == 1.0, series
    assert [burst["size"] for burst in results["bursts"]] == [3]
    files = [s for s in results["capabilities"] if s["name"].startswith("file ")]
    assert len(files) == 4, results["capabilities"]
    network = results["network"]["series"]
    assert len(network) == 6 and len(results["network"]["figures"]) == 3, results["network"]
    for series in files + results["listdir"] + results["preview"] + network:
        assert series["success_rate"] == 1.0 and series["p99"] is not None, series
    assert len(results["listdir"]) == 1 and len(results["preview"]) >= 4
    assert results["density"]["held"] == 3
    for prefix in BASELINES:
        found = [b for b in results["baselines"] if b["name"].startswith(prefix)]
        assert len(found) == 1, (prefix, results["baselines"])
        assert found[0]["unavailable"] or found[0]["samples"], found[0]
    text = (out / "report.md").read_text()
    for heading in ("## Machine and versions", "## Ratios", "## Burst", "## Density", "## Method"):
        assert heading in text
    for heading in ("## Issue targets", "## ListDir", "## Preview URLs", "## Network"):
        assert heading in text
    assert "not measured" not in text, text
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "No plots" in text
    else:
        for plot in ("latency", "burst", "density"):
            assert (out / f"{plot}.png").stat().st_size > 0
            assert f"]({plot}.png)" in text
    assert _corral_bench_leftovers() <= before


def test_report_names_what_could_not_be_measured() -> None:
    unavailable = {"name": "gVisor runsc do /bin/true", "unavailable": "runsc: exec format error"}
    results = {
        "started": "2026-01-01 00:00 UTC",
        "mode": "quick",
        "duration_s": 1.0,
        "command": "bench/suite.py --quick",
        "machine": {"cores": "2"},
        "versions": {"e2b": "2.63.0"},
        "baselines": [unavailable],
        "skipped": ["density"],
    }
    text = report.render(results, image_prefix="../x/")
    assert "| gVisor runsc do /bin/true | 0 | – | – | – | – | **unavailable**: runsc: exec" in text
    assert "Steps skipped in this run: density." in text
    assert "Not measured in this run." in text
    assert "../x/" not in text  # no plots were made, so no image link
    assert "| ListDir: `files.list()` of 10,000 entries | p50 ≤ 200 ms | not measured | – |" in text


def _series(name: str, p50: float) -> dict[str, object]:
    return {"name": name, "attempts": 5, "success_rate": 1.0, "p50": p50, "p95": p50, "p99": p50}


def test_report_puts_issue_targets_next_to_the_figures() -> None:
    results = {
        "started": "2026-01-01 00:00 UTC",
        "mode": "quick",
        "duration_s": 1.0,
        "command": "bench/suite.py --quick",
        "machine": {},
        "versions": {},
        "listdir": [_series("files.list() of 10,000 entries", 0.150)],
        "capabilities": [
            _series("file upload 100 MiB", 100 * report.MIB / 400e6),
            _series("file download 100 MiB", 100 * report.MIB / 200e6),
        ],
        "network": {
            "series": [_series("policy update: PUT → first packet through", 0.060)],
            "figures": {
                "network adds to a create, 0.2s apart (p50 difference), ms": 2.5,
                "network adds to a create, back-to-back (p50 difference), ms": 4.0,
                "throughput sandbox → test host, best of 3 × 2048 MiB, Gbit/s": 5.0,
            },
        },
    }
    text = report.render(results)
    top = text.split("## Machine and versions")[0]
    expected = [
        "| ListDir: `files.list()` of 10,000 entries | p50 ≤ 200 ms | p50 150.0 ms, p99 150.0 ms"
        " (5 runs) | yes |",
        "| upload 100 MiB (`files.write`) | ≥ 300 MB/s | 400 MB/s at p50 (5 runs) | yes |",
        "| download 100 MiB (`files.read`) | ≥ 300 MB/s | 200 MB/s at p50 (5 runs) | **no** |",
        "creates 0.2 s apart | p50 ≤ 3 ms added | 2.50 ms | yes |",
        "back-to-back | p50 ≤ 3 ms added | 4.00 ms | **no** |",
        "| throughput sandbox → test host | ≥ 1 Gbit/s | 5.00 Gbit/s | yes |",
        "| policy update: PUT → first packet through | ≤ 50 ms | p50 60.0 ms",
    ]
    for row in expected:
        assert row in top, top
        assert row in text.split("## Capabilities")[1], row  # and again in its section


def _interpreter_template_missing() -> str | None:
    try:
        code_interpreter.template_python(harness.DEFAULT_TEMPLATES_DIR)
    except code_interpreter.TemplateUnavailable as exc:
        return str(exc)
    return None


def test_code_interpreter_benchmark_runs() -> None:
    """`bench/code_interpreter.py` with 2 creates, 5 warm calls and 2 idle sandboxes: every
    series measured and successful, the host-kernel baseline and the ratio printed, the
    memory split by process (skipped without the template, except in CI)."""
    missing = _interpreter_template_missing()
    if missing is not None and not os.environ.get("CI"):
        pytest.skip(missing)
    argv = [str(BENCH / "code_interpreter.py"), "--runs", "2", "--calls", "5", "--held", "2"]
    stdout = _run(argv, 60)
    expected = [
        "create → first run_code(1+1): n=2",
        "default context: n=5",
        "new context: n=5",
        "ipykernel on the host: n=5",
        "ratio Corral / baseline p50, default context:",
        "ratio Corral / baseline p50, new context:",
        "idle memory: 2 sandboxes held (2 held)",
        "PSS per sandbox:",
        "MemAvailable drop per sandbox:",
    ]
    if harness.runtime_name() != "fake":
        expected += ["memory cgroup usage per sandbox:", "python kernel", "agent (pid 1)"]
    for text in expected:
        assert text in stdout, stdout
    assert "unavailable" not in stdout and stdout.count("success=") == 4, stdout
    assert stdout.count("success=2/2") == 1 and stdout.count("success=5/5") == 3, stdout


def test_report_shows_the_code_interpreter_against_its_baseline() -> None:
    series = [
        _series("code interpreter: create → first run_code(1+1)", 0.400),
        _series("code interpreter: run_code(1+1), default context", 0.012),
        _series("code interpreter: run_code(1+1), new context", 0.009),
        _series("baseline: jupyter_client execute 1+1 → idle, ipykernel on the host", 0.006),
    ]
    processes = [
        {"role": "python kernel", "command": "python -m ipykernel_launcher", "pss": 60 * MIB},
        {"role": "python kernel", "command": "python -m ipykernel_launcher", "pss": 40 * MIB},
        {"role": "deno kernel", "command": "deno jupyter", "pss": 50 * MIB},
    ]
    memory = {
        "held": 2,
        "stop_reason": "2 held",
        "unavailable": None,
        "settle_seconds": 1.5,
        "cgroup_memory": [200 * MIB, 180 * MIB],
        "pss": [150 * MIB, 150 * MIB],
        "mem_available_drop": 400 * MIB,
        "processes": processes,
    }
    results = {
        "started": "2026-01-01 00:00 UTC",
        "mode": "quick",
        "duration_s": 1.0,
        "command": "bench/suite.py --quick",
        "machine": {},
        "versions": {},
        "code_interpreter": {
            "series": series,
            "memory": memory,
            "ratios": {"default context": 2.0, "new context": 1.5},
            "unavailable": None,
        },
    }
    text = report.render(results)
    section = text.split("## Code interpreter")[1]
    rows = [
        '| code interpreter: create → first `run_code("1+1")` result | p50 ≤ 500 ms | '
        "p50 400.0 ms, p99 400.0 ms (5 runs) | yes |",
        '| code interpreter: warm `run_code("1+1")`, default context | p50 ≤ 10 ms | '
        "p50 12.0 ms, p99 12.0 ms (5 runs) | **no** |",
        '| code interpreter: warm `run_code("1+1")`, new context | p50 ≤ 10 ms | '
        "p50 9.00 ms, p99 9.00 ms (5 runs) | yes |",
    ]
    for row in rows:
        assert row in text.split("## Machine and versions")[0], row
        assert row in section, row
    for row in (
        "| default context | 12.0 ms | 6.00 ms | 2.00× |",
        "| memory cgroup usage per sandbox (mean) | 190.00 MiB (each: 200.0, 180.0 MiB) |",
        "| PSS of the sandbox's processes per sandbox (mean) | 150.00 MiB |",
        "| host `MemAvailable` drop per sandbox | 200.00 MiB |",
        "| python kernel | 2 | 100.00 MiB |",
        "| deno kernel | 1 | 50.00 MiB |",
    ):
        assert row in section, section

    reason = "template code-interpreter-v1 is not built"
    results["code_interpreter"] = {
        "series": [{"name": s["name"], "unavailable": reason} for s in series],
        "memory": None,
        "ratios": {},
        "unavailable": reason,
    }
    text = report.render(results)
    assert f"Not available: {reason}" in text.split("## Code interpreter")[1]
    assert f"| p50 ≤ 500 ms | unavailable: {reason} | – |" in text
