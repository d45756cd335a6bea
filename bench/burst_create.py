"""Burst: N concurrent creates (each `Sandbox.create()` + `commands.run("echo i")`), through
the official SDK from N threads, for N = 10, 50, 100 (`CORRAL_BENCH_N` caps N).

Prints per burst: total wall time, per-create latency p50/p95/p99, failures.

    /work/main/.venv/bin/python bench/burst_create.py
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import _harness as harness
from _results import Burst, Latencies

__all__ = ["SIZES", "measure"]

SIZES = (10, 50, 100)


def measure(server: harness.CorralServer, sizes: Sequence[int], ids: list[str]) -> list[Burst]:
    """One burst per size; every sandbox is killed before the next burst starts."""
    bursts = []
    with harness.environ(harness.sdk_env(server)):
        from e2b import Sandbox

        def one(i: int) -> tuple[Any, float, BaseException | None]:
            start = time.perf_counter()
            try:
                sbx = Sandbox.create(timeout=120)
            except Exception as exc:
                return None, time.perf_counter() - start, exc
            try:
                out = sbx.commands.run(f"echo {i}").stdout
                if out != f"{i}\n":
                    raise AssertionError(f"wrong output {out!r}")
            except Exception as exc:
                return sbx, time.perf_counter() - start, exc
            return sbx, time.perf_counter() - start, None

        for n in sizes:
            wall_start = time.perf_counter()
            with ThreadPoolExecutor(n) as pool:
                results = list(pool.map(one, range(n)))
            wall = time.perf_counter() - wall_start
            latencies = Latencies(f"burst of {n}: per-create", attempts=n)
            for _, elapsed, error in results:
                if error is None:
                    latencies.samples.append(elapsed)
                else:
                    latencies.record_error(error)
            made = [sbx for sbx, _, _ in results if sbx is not None]
            ids += [sbx.sandbox_id for sbx in made]
            bursts.append(Burst(n, wall, latencies))
            with ThreadPoolExecutor(20) as pool:
                list(pool.map(lambda sbx: sbx.kill(), made))
    return bursts


def main() -> int:
    cap = harness.bench_n(100)
    sizes = sorted({min(n, cap) for n in SIZES})
    with harness.benchmark_server() as (server, ids):
        bursts = measure(server, sizes, ids)
    for burst in bursts:
        print(
            f"burst n={burst.size}: total={burst.total * 1000:.0f}ms "
            f"failures={burst.latencies.failures} {burst.latencies.line()}"
        )
    return harness.report_leaks(server, ids)


if __name__ == "__main__":
    raise SystemExit(main())
