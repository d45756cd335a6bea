"""Command round trip on a live sandbox: `commands.run("true")` through the official SDK.

N samples after a warm-up (`CORRAL_BENCH_N`, default 500); prints p50/p95/p99 and the
`fork+exec /bin/true` baseline measured in the same run.

    /work/main/.venv/bin/python bench/command_roundtrip.py
"""

from __future__ import annotations

import sys
import time

import _harness as harness
from _results import Latencies, measure_calls

__all__ = ["measure"]


def measure(server: harness.CorralServer, n: int, warmup: int, ids: list[str]) -> Latencies:
    """`commands.run("true")` `n` times on one live sandbox (its id goes to `ids`)."""
    with harness.environ(harness.sdk_env(server)):
        from e2b import Sandbox

        sbx = Sandbox.create(timeout=600)
        ids.append(sbx.sandbox_id)
        try:

            def one() -> float:
                start = time.perf_counter()
                sbx.commands.run("true")
                return time.perf_counter() - start

            return measure_calls("command round trip", n, one, warmup=warmup)
        finally:
            sbx.kill()


def main() -> int:
    n = harness.bench_n(500)
    warmup = harness.warmup_count(n, most=20)
    with harness.benchmark_server() as (server, ids):
        result = measure(server, n, warmup, ids)
    print(f"runtime={server.runtime} n={n} warmup={warmup}")
    print(result.line())
    base = harness.time_command(["/bin/true"], max(3, min(n, 200)))
    print(harness.format_latencies("baseline fork+exec /bin/true", base))
    ratio = (result.percentile(50) or float("nan")) / harness.percentiles(base)[50]
    print(f"ratio p50 / baseline p50: {ratio:.1f}x")
    return harness.report_leaks(server, ids) or (1 if result.failures else 0)


if __name__ == "__main__":
    sys.exit(main())
