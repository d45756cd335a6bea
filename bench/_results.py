"""Result records of the benchmarks: what each measuring function returns.

* `Latencies`: one named series of wall-clock samples (seconds) with the number of attempts
  and failures, so every figure carries its run count and success rate. A series that could
  not be measured at all carries `unavailable` (the reason) instead of samples.
* `Burst`: N concurrent creates: total wall time plus the per-create `Latencies`.
* `Density`: sandboxes held idle up to a cap: memory per sandbox, create latency at density
  and the memory cgroup counts before and after.

Every record turns into plain JSON (`to_json`) for `results.json`, from which
`bench/report.py` writes the Markdown report and the plots.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import _harness as harness

__all__ = ["Burst", "Density", "Latencies", "measure_calls", "to_json"]

MAX_ERRORS_KEPT = 5


@dataclass
class Latencies:
    """A latency series; `samples` holds successful runs only (seconds)."""

    name: str
    samples: list[float] = field(default_factory=list)
    attempts: int = 0
    failures: int = 0
    errors: list[str] = field(default_factory=list)
    unavailable: str | None = None
    note: str = ""

    def record_error(self, exc: BaseException) -> None:
        self.failures += 1
        text = f"{type(exc).__name__}: {exc}".strip()[:300]
        if text not in self.errors and len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(text)

    @property
    def success_rate(self) -> float:
        return (self.attempts - self.failures) / self.attempts if self.attempts else 0.0

    def percentile(self, point: float) -> float | None:
        return harness.percentiles(self.samples, (point,))[point] if self.samples else None

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.samples) if self.samples else None

    def line(self) -> str:
        """One printable line: the percentiles, the run count and the success rate."""
        if self.unavailable is not None:
            return f"{self.name}: unavailable ({self.unavailable})"
        if not self.samples:
            return f"{self.name}: no successful run of {self.attempts}; errors: {self.errors}"
        return (
            f"{harness.format_latencies(self.name, self.samples)} "
            f"success={self.attempts - self.failures}/{self.attempts}"
        )


def measure_calls(
    name: str, n: int, one: Callable[[], float], *, warmup: int = 0, note: str = ""
) -> Latencies:
    """Call `one()` (which returns its own elapsed seconds) `warmup` + `n` times.

    A call that raises counts as a failure of the series; warm-up calls are not recorded
    but their failures still raise, since a benchmark that cannot warm up is broken.
    """
    for _ in range(warmup):
        one()
    result = Latencies(name, note=note)
    for _ in range(n):
        result.attempts += 1
        try:
            result.samples.append(float(one()))
        except Exception as exc:
            result.record_error(exc)
    return result


@dataclass
class Burst:
    """`size` concurrent creates: total wall time and the per-create latencies."""

    size: int
    total: float
    latencies: Latencies


@dataclass
class Density:
    """Sandboxes held idle until the cap or the first failed create."""

    cap: int
    held: int
    stop_reason: str
    create: Latencies  # every create, in order: sample i was taken with i sandboxes held
    mem_available_drop: int  # bytes, before the first create -> all held
    cgroup_memory: list[int]  # bytes per sandbox (memory cgroup usage), where readable
    sandbox_pss: int  # bytes, sum over every sandbox's processes
    server_pss_growth: int  # bytes, server + launcher + their children
    alive_after: str  # how many of the probed held sandboxes still answered
    memcg_before: dict[str, int]
    memcg_after: dict[str, int]
    kill_seconds: float
    unshare_baseline_per_process: float | None = None  # bytes of MemAvailable per process
    unshare_baseline_count: int = 0


def to_json(value: Any) -> Any:
    """Records (and lists/dicts of them) as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Latencies):
            data["success_rate"] = value.success_rate
            for point in (50, 95, 99):
                data[f"p{point}"] = value.percentile(point)
            data["mean"] = value.mean
        return data
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value
