"""`files.list()` of a 10,000-entry directory on a live sandbox through the official SDK.

N samples after a warm-up (`CORRAL_BENCH_N`, default 50) of the whole SDK call (request,
walk, JSON both ways, the SDK's own parsing); for scale, the note carries one `ls -l` of the
same directory inside the sandbox, measured by a command. Issue target: p50 ≤ 200 ms.
`measure(server, n, ids)` is the suite's step; run alone it prints p50/p95/p99:

    /work/main/.venv/bin/python bench/listdir.py
"""

from __future__ import annotations

import sys
import time

import _harness as harness
from _results import Latencies, measure_calls

__all__ = ["ENTRIES", "SERIES", "measure"]

ENTRIES = 10_000
DIRECTORY = "/home/user/listdir-bench"
SERIES = f"files.list() of {ENTRIES:,} entries"


def measure(server: harness.CorralServer, n: int, ids: list[str]) -> Latencies:
    """`n` timed `files.list()` calls of a fresh 10k-entry directory on one new sandbox."""
    warmup = harness.warmup_count(n, most=5)
    with harness.environ(harness.sdk_env(server)):
        from e2b import Sandbox

        sbx = Sandbox.create(timeout=600)
        ids.append(sbx.sandbox_id)
        try:
            directory = DIRECTORY if server.runtime != "fake" else "listdir-bench"
            sbx.commands.run(
                f"mkdir -p {directory} && cd {directory} && touch f{{00000..{ENTRIES - 1:05d}}}"
            )

            def one() -> float:
                start = time.perf_counter()
                count = len(sbx.files.list(directory))
                elapsed = time.perf_counter() - start
                if count != ENTRIES:
                    raise AssertionError(f"expected {ENTRIES} entries, listed {count}")
                return elapsed

            result = measure_calls(SERIES, n, one, warmup=warmup)
            timing = sbx.commands.run(
                f"s=$(date +%s%N); ls -l {directory} >/dev/null; e=$(date +%s%N); "
                "echo $(( (e - s) / 1000 ))"
            )
            ls_ms = int(timing.stdout.strip()) / 1e3
        finally:
            sbx.kill()
    result.note = f"{warmup} warm-up; for scale, one `ls -l` in the sandbox: {ls_ms:.1f} ms"
    return result


def main() -> int:
    n = harness.bench_n(50)
    with harness.benchmark_server() as (server, ids):
        result = measure(server, n, ids)
    print(f"runtime={server.runtime} n={n} entries={ENTRIES}")
    print(result.line())
    print(result.note)
    return harness.report_leaks(server, ids)


if __name__ == "__main__":
    sys.exit(main())
