"""`files.list()` of a 10,000-entry directory on a live sandbox through the official SDK.

N samples after a warm-up (`CORRAL_BENCH_N`, default 50); prints p50/p95/p99 of the whole
SDK call (request, walk, JSON both ways, the SDK's own parsing) and, for scale, of a
`ls -l` of the same directory inside the sandbox measured by a command.

    /work/main/.venv/bin/python bench/listdir.py
"""

from __future__ import annotations

import sys
import time

import _harness as harness

ENTRIES = 10_000
DIRECTORY = "/home/user/listdir-bench"


def main() -> int:
    n = harness.bench_n(50)
    warmup = harness.warmup_count(n, most=5)
    with harness.benchmark_server() as (server, ids), harness.environ(harness.sdk_env(server)):
        from e2b import Sandbox

        sbx = Sandbox.create(timeout=600)
        ids.append(sbx.sandbox_id)
        try:
            directory = DIRECTORY if server.runtime != "fake" else "listdir-bench"
            sbx.commands.run(
                f"mkdir -p {directory} && cd {directory} && touch f{{00000..{ENTRIES - 1:05d}}}"
            )
            count = len(sbx.files.list(directory))
            if count != ENTRIES:
                raise SystemExit(f"expected {ENTRIES} entries, listed {count}")
            for _ in range(warmup):
                sbx.files.list(directory)
            samples = []
            for _ in range(n):
                start = time.perf_counter()
                sbx.files.list(directory)
                samples.append(time.perf_counter() - start)
            timing = sbx.commands.run(
                f"s=$(date +%s%N); ls -l {directory} >/dev/null; e=$(date +%s%N); "
                "echo $(( (e - s) / 1000 ))"
            )
            ls_seconds = int(timing.stdout.strip()) / 1e6
        finally:
            sbx.kill()
    print(f"runtime={server.runtime} n={n} warmup={warmup} entries={ENTRIES}")
    print(harness.format_latencies("files.list(10k entries)", samples))
    print(f"for scale: one `ls -l` of the same directory in the sandbox: {ls_seconds * 1e3:.1f} ms")
    return harness.report_leaks(server, ids)


if __name__ == "__main__":
    sys.exit(main())
