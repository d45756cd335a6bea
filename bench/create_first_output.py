"""Create -> first command output, through the official SDK.

Each sample: `Sandbox.create()` then `commands.run("echo hi")` (timed together), then
`kill()` (not timed). N samples after a warm-up (`CORRAL_BENCH_N`, default 200). Prints
p50/p95/p99 and sequential throughput, and baselines measured in the same run:
`fork+exec /bin/true` and `unshare --fork --pid --mount --net --uts --ipc --user /bin/true`.

    /work/main/.venv/bin/python bench/create_first_output.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import _harness as harness


def main() -> int:
    n = harness.bench_n(200)
    warmup = max(1, min(10, n // 10))
    harness.become_subreaper()
    server = harness.CorralServer()
    server.start()
    ids: list[str] = []
    try:
        with harness.environ(harness.sdk_env(server)):
            from e2b import Sandbox

            def one() -> float:
                start = time.perf_counter()
                sbx = Sandbox.create(timeout=60)
                out = sbx.commands.run("echo hi").stdout
                elapsed = time.perf_counter() - start
                ids.append(sbx.sandbox_id)
                sbx.kill()
                if out != "hi\n":
                    raise AssertionError(f"unexpected output {out!r}")
                return elapsed

            for _ in range(warmup):
                one()
            wall_start = time.perf_counter()
            samples = [one() for _ in range(n)]
            wall = time.perf_counter() - wall_start
    finally:
        server.stop()
    print(f"runtime={server.runtime} n={n} warmup={warmup}")
    print(harness.format_latencies("create+first_output", samples))
    print(f"throughput: {n / wall:.1f} sandboxes/s (sequential create+run+kill)")
    p50 = harness.percentiles(samples)[50]
    baselines = [("fork+exec /bin/true", ["/bin/true"])]
    if shutil.which("unshare"):
        unshare = [*harness.UNSHARE_ALL, "/bin/true"]
        baselines.append((" ".join(unshare), unshare))
    for name, argv in baselines:
        try:
            base = harness.time_command(argv, max(3, min(n, 100)))
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"baseline {name}: unavailable ({exc})")
            continue
        print(harness.format_latencies(f"baseline {name}", base))
        ratio = p50 / harness.percentiles(base)[50]
        print(f"ratio create+first_output p50 / baseline p50: {ratio:.1f}x")
    return harness.report_leaks(server, ids)


if __name__ == "__main__":
    sys.exit(main())
