"""Markdown report and PNG plots from a suite run's `results.json`.

`write_report(results, out_dir)` writes `report.md` and the plots (`latency.png`,
`burst.png`, `density.png`) next to it; `render(results, image_prefix)` returns the Markdown
alone, with image links prefixed (so `docs/benchmarks.md` can point into `bench/results/`).
Without matplotlib the report is written with its tables and a note instead of plots.
Figures the issues set a target for (`TARGETS`) get a table with the target and whether the
run met it, at the top and in their section.

Re-render an old run without measuring again:

    /work/main/.venv/bin/python bench/report.py bench/results/<run>/results.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = ["make_plots", "render", "write_report"]

MIB = 1024 * 1024
Series = dict[str, Any]


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    ms = seconds * 1000
    return f"{ms:.2f} ms" if ms < 10 else f"{ms:.1f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def _mib(value: float) -> str:
    return f"{value / MIB:.2f} MiB"


def _success(series: Series) -> str:
    attempts = series["attempts"]
    return f"{100 * series['success_rate']:.0f}%" if attempts else "–"


def _latency_table(rows: Iterable[Series]) -> list[str]:
    rows = list(rows)
    if not rows:
        return ["Not measured in this run."]
    lines = [
        "| series | runs | success | p50 | p95 | p99 | note |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for series in rows:
        name = series["name"]
        if series.get("unavailable"):
            lines.append(
                f"| {name} | 0 | – | – | – | – | **unavailable**: {series['unavailable']} |"
            )
            continue
        note = series.get("note", "")
        if series.get("errors"):
            note = (note + "; " if note else "") + "errors: " + "; ".join(series["errors"])
        lines.append(
            f"| {name} | {series['attempts']} | {_success(series)} | {_ms(series['p50'])} | "
            f"{_ms(series['p95'])} | {_ms(series['p99'])} | {note.replace('|', '/')} |"
        )
    return lines


def _find(rows: Iterable[Series], prefix: str) -> Series | None:
    for series in rows:
        if series["name"].startswith(prefix) and series.get("p50"):
            return series
    return None


# Which Corral series is compared with which baselines (name prefixes).
RATIO_PAIRS = (
    (
        "create → first output (e2b SDK)",
        ("fork+exec", "unshare", "bubblewrap", "podman (runc) run", "gVisor"),
    ),
    ("create → first output (corral CLI)", ("podman (runc) run", "gVisor")),
    ("command round trip", ("fork+exec", "podman (runc) exec")),
)


def _ratio_table(results: dict[str, Any]) -> list[str]:
    corral = results.get("corral", [])
    baselines = results.get("baselines", [])
    lines = [
        "| Corral series | baseline | Corral p50 | baseline p50 | ratio (< 1: Corral faster) |",
        "|---|---|---:|---:|---:|",
    ]
    for mine_name, others in RATIO_PAIRS:
        mine = _find(corral, mine_name)
        if mine is None:
            continue
        for prefix in others:
            base = _find(baselines, prefix)
            if base is not None:
                lines.append(
                    f"| {mine['name']} | {base['name']} | {_ms(mine['p50'])} | "
                    f"{_ms(base['p50'])} | {mine['p50'] / base['p50']:.2f}× |"
                )
    return (
        lines if len(lines) > 2 else ["No ratio: the Corral series or the baselines are missing."]
    )


def _bursts(results: dict[str, Any]) -> list[str]:
    bursts = results.get("bursts") or []
    if not bursts:
        return ["Not measured in this run."]
    lines = [
        "| concurrent creates | total | per-create p50 | p95 | p99 | failures |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for burst in bursts:
        lat = burst["latencies"]
        lines.append(
            f"| {burst['size']} | {_ms(burst['total'])} | {_ms(lat['p50'])} | {_ms(lat['p95'])} "
            f"| {_ms(lat['p99'])} | {lat['failures']} |"
        )
        if lat.get("errors"):
            lines.append(f"|  | errors: {'; '.join(lat['errors'])} | | | | |")
    return lines


def _density(results: dict[str, Any]) -> list[str]:
    density = results.get("density")
    if not density:
        return ["Not measured in this run."]
    held = max(1, density["held"])
    create = density["create"]
    samples = create["samples"]
    tail = sorted(samples[int(0.9 * len(samples)) :]) or [0.0]
    cgroup = density["cgroup_memory"]
    lines = [
        f"Held **{density['held']}** idle sandboxes (cap {density['cap']}; stopped because: "
        f"{density['stop_reason']}). Probed held sandboxes still answering a command: "
        f"{density['alive_after']}. Killing all of them took {density['kill_seconds']:.2f} s.",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| host `MemAvailable` drop, total | {_mib(density['mem_available_drop'])} |",
        f"| host `MemAvailable` drop per sandbox | {_mib(density['mem_available_drop'] / held)} |",
        f"| memory cgroup usage per sandbox (mean) | "
        f"{_mib(sum(cgroup) / len(cgroup)) if cgroup else 'n/a'} |",
        f"| PSS of in-sandbox processes per sandbox | {_mib(density['sandbox_pss'] / held)} |",
        f"| PSS growth of server + launcher + sandboxes, per sandbox | "
        f"{_mib(density['server_pss_growth'] / held)} |",
        f"| create latency over the ramp: p50 / p99 | "
        f"{_ms(create['p50'])} / {_ms(create['p99'])} |",
        f"| create latency, last tenth of the ramp (p50 / p99) | {_ms(tail[len(tail) // 2])} / "
        f"{_ms(tail[min(len(tail) - 1, int(0.99 * len(tail)))])} |",
        f"| create failures | {create['failures']} of {create['attempts']} |",
    ]
    if density["mem_available_drop"] <= 0:
        lines.append(
            "| note | `MemAvailable` rose meanwhile: other work on the host freed memory, so "
            "the drop is meaningless in this run; see the cgroup and PSS rows |"
        )
    if density.get("unshare_baseline_per_process") is not None:
        lines.append(
            f"| baseline: `MemAvailable` drop per idle `unshare` process "
            f"({density['unshare_baseline_count']}) | "
            f"{_mib(density['unshare_baseline_per_process'])} |"
        )
    before, after = density["memcg_before"], density["memcg_after"]
    lines += [
        "",
        "Memory cgroups (`/proc/cgroups` counts dying ones; live = directories that exist):",
        "",
        "| | /proc/cgroups | live | dying |",
        "|---|---:|---:|---:|",
        f"| before | {before['proc_cgroups']} | {before['live_dirs']} | {before['dying']} |",
        f"| after | {after['proc_cgroups']} | {after['live_dirs']} | {after['dying']} |",
    ]
    return lines


def _file_transfer(results: dict[str, Any]) -> list[str]:
    detail = results.get("file_transfer")
    if not detail:
        return []
    lines = ["### File transfer detail (`bench/file_transfer.py`)", ""]
    if detail.get("unavailable"):
        return lines + [f"Not available: {detail['unavailable']}", ""]
    lines += [
        f"MB/s (10^6 bytes) at the median of {detail['runs']} runs after a warm-up (issue "
        "target: ≥ 300 MB/s each way):",
        "",
        "| transfer | MB/s |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {value:.0f} |" for name, value in detail["throughput"].items()]
    lines += ["", "| resident memory (RSS) | baseline | peak |", "|---|---:|---:|"]
    lines += [
        f"| {name} | {base:.1f} MiB | {peak:.1f} MiB |"
        for name, (base, peak) in detail["memory"].items()
    ]
    return lines + [""]


def _series_of(results: dict[str, Any], key: str) -> list[Series]:
    """The latency series a step stored under `key` (a list, or a record with `series`)."""
    found = results.get(key) or []
    return list(found.get("series", [])) if isinstance(found, dict) else list(found)


def _figure(results: dict[str, Any], prefix: str) -> float | None:
    figures = (results.get("network") or {}).get("figures", {})
    return next((value for name, value in figures.items() if name.startswith(prefix)), None)


Measured = tuple[str, bool | None]  # (the figure as text, target met; None: not measured)


def _runs(series: Series) -> str:
    return f"{series['attempts']} run" + ("" if series["attempts"] == 1 else "s")


def _unavailable(rows: Iterable[Series], prefix: str) -> str | None:
    """Why the series named `prefix…` could not be measured, if it says so."""
    for series in rows:
        if series["name"].startswith(prefix) and series.get("unavailable"):
            return str(series["unavailable"])
    return None


def _p50_at_most(key: str, prefix: str, limit: float) -> Callable[[dict[str, Any]], Measured]:
    def measured(results: dict[str, Any]) -> Measured:
        rows = _series_of(results, key)
        series = _find(rows, prefix)
        if series is None:
            reason = _unavailable(rows, prefix)
            return ("not measured" if reason is None else f"unavailable: {reason}"), None
        text = f"p50 {_ms(series['p50'])}, p99 {_ms(series['p99'])} ({_runs(series)})"
        return text, series["p50"] <= limit

    return measured


def _rate_at_least(prefix: str, size: int, least: float) -> Callable[[dict[str, Any]], Measured]:
    def measured(results: dict[str, Any]) -> Measured:
        series = _find(_series_of(results, "capabilities"), prefix)
        if series is None:
            return "not measured", None
        rate = size / series["p50"] / 1e6
        return f"{rate:.0f} MB/s at p50 ({_runs(series)})", rate >= least

    return measured


def _figure_within(
    prefix: str, limit: float, unit: str, *, at_most: bool
) -> Callable[[dict[str, Any]], Measured]:
    def measured(results: dict[str, Any]) -> Measured:
        value = _figure(results, prefix)
        if value is None:
            return "not measured", None
        return f"{value:.2f} {unit}", value <= limit if at_most else value >= limit

    return measured


# Series names of bench/code_interpreter.py (prefixes).
INTERPRETER_FIRST = "code interpreter: create → first run_code"
INTERPRETER_WARM = "code interpreter: run_code(1+1), "
INTERPRETER_BASELINE = "baseline: jupyter_client"

# The targets the issues set: (what, target as text, how to read the figure from the results).
TARGETS: tuple[tuple[str, str, Callable[[dict[str, Any]], Measured]], ...] = (
    (
        "ListDir: `files.list()` of 10,000 entries",
        "p50 ≤ 200 ms",
        _p50_at_most("listdir", "files.list()", 0.200),
    ),
    (
        'code interpreter: create → first `run_code("1+1")` result',
        "p50 ≤ 500 ms",
        _p50_at_most("code_interpreter", INTERPRETER_FIRST, 0.500),
    ),
    (
        'code interpreter: warm `run_code("1+1")`, default context',
        "p50 ≤ 10 ms",
        _p50_at_most("code_interpreter", INTERPRETER_WARM + "default context", 0.010),
    ),
    (
        'code interpreter: warm `run_code("1+1")`, new context',
        "p50 ≤ 10 ms",
        _p50_at_most("code_interpreter", INTERPRETER_WARM + "new context", 0.010),
    ),
    (
        "upload 100 MiB (`files.write`)",
        "≥ 300 MB/s",
        _rate_at_least("file upload 100 MiB", 100 * MIB, 300),
    ),
    (
        "download 100 MiB (`files.read`)",
        "≥ 300 MB/s",
        _rate_at_least("file download 100 MiB", 100 * MIB, 300),
    ),
    (
        "network setup added to a create, creates 0.2 s apart",
        "p50 ≤ 3 ms added",
        _figure_within("network adds to a create, 0.2s apart", 3.0, "ms", at_most=True),
    ),
    (
        "network setup added to a create, back-to-back",
        "p50 ≤ 3 ms added",
        _figure_within("network adds to a create, back-to-back", 3.0, "ms", at_most=True),
    ),
    (
        "throughput sandbox → test host",
        "≥ 1 Gbit/s",
        _figure_within("throughput sandbox", 1.0, "Gbit/s", at_most=False),
    ),
    (
        "policy update: PUT → first packet through",
        "≤ 50 ms",
        _p50_at_most("network", "policy update: PUT → first packet", 0.050),
    ),
)


def _targets(results: dict[str, Any], subjects: tuple[str, ...] = ()) -> list[str]:
    """The issue-target table; only the rows whose subject starts with one of `subjects`
    (all rows when empty)."""
    lines = ["| figure | issue target | measured | met |", "|---|---|---|---|"]
    for subject, target, measured in TARGETS:
        if subjects and not subject.startswith(subjects):
            continue
        text, met = measured(results)
        verdict = "–" if met is None else "yes" if met else "**no**"
        lines.append(f"| {subject} | {target} | {text} | {verdict} |")
    return lines


def _network(results: dict[str, Any]) -> list[str]:
    detail = results.get("network")
    if not detail:
        return ["Not measured in this run."]
    if detail.get("unavailable"):
        return [f"Not available: {detail['unavailable']}"]
    lines = _latency_table(detail["series"]) + ["", "| figure | value |", "|---|---:|"]
    lines += [f"| {name} | {value:.2f} |" for name, value in detail["figures"].items()]
    subjects = ("network", "throughput", "policy")
    return lines + ["", "Issue targets:", ""] + _targets(results, subjects)


def _code_interpreter(results: dict[str, Any]) -> list[str]:
    detail = results.get("code_interpreter")
    if not detail:
        return ["Not measured in this run."]
    if detail.get("unavailable"):
        return [f"Not available: {detail['unavailable']}"]
    series = detail["series"]
    lines = _latency_table(series) + [""]
    base = _find(series, INTERPRETER_BASELINE)
    ratios = detail.get("ratios") or {}
    if base is not None and ratios:
        lines += [
            "Warm round trip against the baseline (the same execute sent straight to an "
            "ipykernel on the host with jupyter_client):",
            "",
            '| warm `run_code("1+1")` | Corral p50 | host ipykernel p50 | ratio |',
            "|---|---:|---:|---:|",
        ]
        for label, ratio in ratios.items():
            mine = _find(series, INTERPRETER_WARM + label)
            if mine is not None:
                lines.append(
                    f"| {label} | {_ms(mine['p50'])} | {_ms(base['p50'])} | {ratio:.2f}× |"
                )
        lines.append("")
    lines += _interpreter_memory(detail.get("memory")) + [""]
    return lines + ["Issue targets:", ""] + _targets(results, ("code interpreter",))


def _interpreter_memory(memory: dict[str, Any] | None) -> list[str]:
    if not memory:
        return []
    lines = ["Idle code-interpreter sandboxes (each ran `1+1`, then settled):", ""]
    if memory.get("unavailable"):
        return lines + [f"Not available: {memory['unavailable']}"]
    held = max(1, memory["held"])
    cgroup = memory["cgroup_memory"]
    pss = memory["pss"]
    each = ", ".join(f"{value / MIB:.1f}" for value in cgroup)
    lines += [
        "| figure | value |",
        "|---|---:|",
        f"| sandboxes held | {memory['held']} ({memory['stop_reason']}; settled after "
        f"{memory['settle_seconds']:.1f} s) |",
        f"| memory cgroup usage per sandbox (mean) | "
        f"{_mib(sum(cgroup) / len(cgroup)) + f' (each: {each} MiB)' if cgroup else 'n/a'} |",
        f"| PSS of the sandbox's processes per sandbox (mean) | {_mib(sum(pss) / held)} |",
        f"| host `MemAvailable` drop per sandbox | {_mib(memory['mem_available_drop'] / held)} |",
    ]
    if memory["mem_available_drop"] <= 0:
        lines.append(
            "| note | `MemAvailable` rose meanwhile (other work on the host freed memory): "
            "the drop is meaningless in this run |"
        )
    roles: dict[str, list[int]] = {}
    for process in memory.get("processes", []):
        roles.setdefault(process["role"], []).append(process["pss"])
    if roles:
        lines += ["", "| process (one sandbox) | count | PSS |", "|---|---:|---:|"]
        for role, values in sorted(roles.items(), key=lambda item: -sum(item[1])):
            lines.append(f"| {role} | {len(values)} | {_mib(sum(values))} |")
    return lines


def _kv_table(title: str, values: dict[str, Any]) -> list[str]:
    lines = [f"| {title} | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in values.items()]
    return lines


def render(results: dict[str, Any], image_prefix: str = "") -> str:
    """The report as Markdown; image links are `image_prefix + <name>.png`."""
    plots = set(results.get("plots", []))
    lines = [
        "# Corral benchmark report",
        "",
        f"Run of {results['started']} ({results['mode']} mode, {results['duration_s']:.0f} s). "
        f'Reproduce with `{results["command"]}` (see the README, "Benchmarks").',
        "",
        "All series are wall-clock latencies measured on this machine in this run, as p50 / p95 "
        "/ p99 over the successful runs, with the number of runs and the success rate. The "
        "baselines ran in the same run, so compare ratios rather than absolute times.",
        "",
    ]
    if results.get("load_note"):
        lines += [f"> {results['load_note']}", ""]
    lines += ["## Issue targets", ""] + _targets(results) + [""]
    lines += ["## Machine and versions", ""]
    lines += _kv_table("machine", results["machine"]) + [""]
    lines += _kv_table("software", results["versions"]) + [""]
    lines += ["## Corral", ""] + _latency_table(results.get("corral", [])) + [""]
    lines += ["## Baselines", ""]
    lines += _latency_table(results.get("baselines", [])) + [""]
    lines += ["## Ratios", ""] + _ratio_table(results) + [""]
    if "latency" in plots:
        lines += [f"![latency distributions]({image_prefix}latency.png)", ""]
    lines += ["## Burst: concurrent creates", ""]
    lines += [
        'N threads each call `Sandbox.create()` + `commands.run("echo i")` at once; total is '
        "the wall time of the whole burst.",
        "",
    ]
    lines += _bursts(results) + [""]
    if "burst" in plots:
        lines += [f"![burst curve]({image_prefix}burst.png)", ""]
    lines += ["## Density: idle sandboxes held", ""] + _density(results) + [""]
    if "density" in plots:
        lines += [f"![create latency at density]({image_prefix}density.png)", ""]
    lines += ["## Capabilities: files, pause/resume, fork", ""]
    lines += _latency_table(results.get("capabilities", [])) + [""]
    lines += ["Issue targets:", ""] + _targets(results, ("upload", "download")) + [""]
    lines += _file_transfer(results)
    lines += ["## Code interpreter", ""] + _code_interpreter(results) + [""]
    lines += ["## ListDir", ""] + _latency_table(results.get("listdir", [])) + [""]
    lines += ["Issue target:", ""] + _targets(results, ("ListDir",)) + [""]
    lines += ["## Preview URLs", ""] + _latency_table(results.get("preview", [])) + [""]
    lines += ["## Network", ""] + _network(results) + [""]
    lines += ["## Method", ""] + [f"- {item}" for item in results.get("method", [])] + [""]
    if results.get("skipped"):
        lines += [f"Steps skipped in this run: {', '.join(results['skipped'])}.", ""]
    if not plots:
        lines += ["_No plots: matplotlib is not installed (`bench/setup_baselines.sh`)._", ""]
    problems = results.get("errors", {})
    if problems or results.get("leaks"):
        lines += ["## Problems in this run", ""]
        lines += [f"- step `{step}` failed: `{text}`" for step, text in problems.items()]
        lines += [f"- leak: {leak}" for leak in results.get("leaks", [])]
        lines += ["- the server's log is `server.log` next to this report"]
        lines += [""]
    return "\n".join(lines)


def make_plots(results: dict[str, Any], out_dir: Path) -> list[str]:
    """Write the PNG plots; returns their names (empty without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made = []
    series = [
        s
        for s in results.get("corral", []) + results.get("baselines", [])
        if s.get("samples") and not s.get("unavailable")
    ]
    if series:
        fig, ax = plt.subplots(figsize=(10, 0.45 * len(series) + 1.5))
        ax.boxplot(
            [[v * 1000 for v in s["samples"]] for s in series],
            orientation="horizontal",
            whis=(1, 99),
            showfliers=False,
        )
        ax.set_yticks(range(1, len(series) + 1), [s["name"] for s in series], fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms, log scale); box = p25..p75, whiskers = p1..p99")
        ax.set_title("Latency distributions (Corral and baselines, same run)")
        ax.grid(axis="x", which="both", alpha=0.3)
        fig.tight_layout()
        fig.savefig(out_dir / "latency.png", dpi=110)
        plt.close(fig)
        made.append("latency")
    bursts = results.get("bursts") or []
    if bursts:
        sizes = [b["size"] for b in bursts]
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(sizes, [b["total"] * 1000 for b in bursts], "o-", label="burst total")
        for point in (50, 99):
            values = [(b["latencies"][f"p{point}"] or 0) * 1000 for b in bursts]
            ax.plot(sizes, values, "s--", label=f"per-create p{point}")
        ax.set_xlabel("concurrent creates (N)")
        ax.set_ylabel("ms")
        ax.set_title("Burst: N concurrent Sandbox.create() + first command")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / "burst.png", dpi=110)
        plt.close(fig)
        made.append("burst")
    density = results.get("density")
    if density and density["create"]["samples"]:
        samples = [v * 1000 for v in density["create"]["samples"]]
        fig, ax = plt.subplots(figsize=(8, 4))
        ax.plot(range(len(samples)), samples, ".", markersize=3, label="one create")
        window = max(1, len(samples) // 20)
        medians = [
            sorted(samples[max(0, i - window) : i + 1])[
                len(samples[max(0, i - window) : i + 1]) // 2
            ]
            for i in range(len(samples))
        ]
        ax.plot(range(len(samples)), medians, "-", label=f"running median ({window})")
        ax.set_xlabel("idle sandboxes already held")
        ax.set_ylabel("Sandbox.create() latency (ms)")
        ax.set_title("Create latency at density")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / "density.png", dpi=110)
        plt.close(fig)
        made.append("density")
    return made


def write_report(results: dict[str, Any], out_dir: Path) -> Path:
    """Plots, `results.json` (with the plot list) and `report.md` in `out_dir`."""
    results["plots"] = make_plots(results, out_dir)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    path = out_dir / "report.md"
    path.write_text(render(results))
    return path


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: report.py bench/results/<run>/results.json", file=sys.stderr)
        return 2
    source = Path(sys.argv[1])
    print(write_report(json.loads(source.read_text()), source.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
