"""Burst: N concurrent creates (each `Sandbox.create()` + `commands.run("echo i")`), through
the official SDK from N threads, for N = 10, 50, 100 (`CORRAL_BENCH_N` caps N).

Prints per burst: total wall time, per-create latency p50/p95/p99, failures.

    /work/main/.venv/bin/python bench/burst_create.py
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import _harness as harness


def main() -> int:
    cap = harness.bench_n(100)
    sizes = sorted({min(n, cap) for n in (10, 50, 100)})
    harness.become_subreaper()
    server = harness.CorralServer()
    server.start()
    ids: list[str] = []
    try:
        with harness.environ(harness.sdk_env(server)):
            from e2b import Sandbox

            def one(i: int) -> tuple[Sandbox | None, float]:
                start = time.perf_counter()
                try:
                    sbx = Sandbox.create(timeout=120)
                    if sbx.commands.run(f"echo {i}").stdout != f"{i}\n":
                        raise AssertionError("wrong output")
                except Exception:
                    return None, time.perf_counter() - start
                return sbx, time.perf_counter() - start

            for n in sizes:
                wall_start = time.perf_counter()
                with ThreadPoolExecutor(n) as pool:
                    results = list(pool.map(one, range(n)))
                wall = time.perf_counter() - wall_start
                made = [sbx for sbx, _ in results if sbx is not None]
                ids += [sbx.sandbox_id for sbx in made]
                failures = n - len(made)
                print(
                    f"burst n={n}: total={wall * 1000:.0f}ms failures={failures} "
                    + harness.format_latencies("per-create", [t for _, t in results])
                )
                with ThreadPoolExecutor(20) as pool:
                    list(pool.map(lambda sbx: sbx.kill(), made))
    finally:
        server.stop()
    return harness.report_leaks(server, ids)


if __name__ == "__main__":
    raise SystemExit(main())
