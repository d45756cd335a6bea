"""Command round trip on a live sandbox: `commands.run("true")` through the official SDK.

N samples after a warm-up (`CORRAL_BENCH_N`, default 500); prints p50/p95/p99 and the
`fork+exec /bin/true` baseline measured in the same run.

    /work/main/.venv/bin/python bench/command_roundtrip.py
"""

from __future__ import annotations

import sys
import time

import _harness as harness


def main() -> int:
    n = harness.bench_n(500)
    warmup = max(1, min(20, n // 10))
    harness.become_subreaper()
    server = harness.CorralServer()
    server.start()
    ids: list[str] = []
    try:
        with harness.environ(harness.sdk_env(server)):
            from e2b import Sandbox

            sbx = Sandbox.create(timeout=600)
            ids.append(sbx.sandbox_id)
            try:
                for _ in range(warmup):
                    sbx.commands.run("true")
                samples = []
                for _ in range(n):
                    start = time.perf_counter()
                    sbx.commands.run("true")
                    samples.append(time.perf_counter() - start)
            finally:
                sbx.kill()
    finally:
        server.stop()
    print(f"runtime={server.runtime} n={n} warmup={warmup}")
    print(harness.format_latencies("commands.run('true')", samples))
    base = harness.time_command(["/bin/true"], max(3, min(n, 200)))
    print(harness.format_latencies("baseline fork+exec /bin/true", base))
    ratio = harness.percentiles(samples)[50] / harness.percentiles(base)[50]
    print(f"ratio p50 / baseline p50: {ratio:.1f}x")
    return harness.report_leaks(server, ids)


if __name__ == "__main__":
    sys.exit(main())
