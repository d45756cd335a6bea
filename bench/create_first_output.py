"""Create -> first command output, through the official SDK and through `corral sandbox run`.

SDK sample: `Sandbox.create()` then `commands.run("echo hi")` (timed together), then
`kill()` (not timed). CLI sample: `corral sandbox run -- /bin/bash -l -c 'echo hi'` as a new
process, timed from its start to the first byte on its stdout (Python start-up included:
that is what a shell user waits for). N samples after a warm-up (`CORRAL_BENCH_N`, default
200 for the SDK, a quarter of it for the CLI). Prints p50/p95/p99 and sequential throughput,
and baselines measured in the same run: `fork+exec /bin/true` and
`unshare --fork --pid --mount --net --uts --ipc --user /bin/true`.

    /work/main/.venv/bin/python bench/create_first_output.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import _harness as harness
from _results import Latencies, measure_calls

__all__ = ["measure_cli", "measure_sdk"]

COMMAND = "echo hi"


def measure_sdk(server: harness.CorralServer, n: int, warmup: int, ids: list[str]) -> Latencies:
    """`Sandbox.create()` + `commands.run("echo hi")` through the SDK; ids go to `ids`."""
    with harness.environ(harness.sdk_env(server)):
        from e2b import Sandbox

        def one() -> float:
            start = time.perf_counter()
            sbx = Sandbox.create(timeout=60)
            ids.append(sbx.sandbox_id)
            try:
                out = sbx.commands.run(COMMAND).stdout
                elapsed = time.perf_counter() - start
            finally:
                sbx.kill()
            if out != "hi\n":
                raise AssertionError(f"unexpected output {out!r}")
            return elapsed

        return measure_calls("create → first output (e2b SDK)", n, one, warmup=warmup)


def measure_cli(server: harness.CorralServer, n: int, warmup: int) -> Latencies:
    """`corral sandbox run -- bash -l -c 'echo hi'`: process start -> first stdout byte."""
    argv = [str(harness.CORRAL_BIN), "sandbox", "run", "--url", server.url]
    argv += ["--api-key", "bench", "--", "/bin/bash", "-l", "-c", COMMAND]

    def one() -> float:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, bufsize=0, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None
        first = proc.stdout.read(1)
        elapsed = time.perf_counter() - start
        rest, err = proc.communicate(timeout=60)
        if proc.returncode != 0 or first + rest != b"hi\n":
            raise AssertionError(
                f"exit {proc.returncode}, out {first + rest!r}, err {err[-300:]!r}"
            )
        return elapsed

    return measure_calls(
        "create → first output (corral CLI)",
        n,
        one,
        warmup=warmup,
        note="a new `corral sandbox run` process per sample, Python start-up included",
    )


def main() -> int:
    n = harness.bench_n(200)
    warmup = harness.warmup_count(n, most=10)
    with harness.benchmark_server() as (server, ids):
        wall_start = time.perf_counter()
        sdk = measure_sdk(server, n, warmup, ids)
        wall = time.perf_counter() - wall_start
        cli = measure_cli(server, max(1, n // 4), 1)
    print(f"runtime={server.runtime} n={n} warmup={warmup}")
    print(sdk.line())
    print(cli.line())
    print(f"throughput: {(n + warmup) / wall:.1f} sandboxes/s (sequential create+run+kill)")
    p50 = sdk.percentile(50) or float("nan")
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
    failed = sdk.failures + cli.failures
    return harness.report_leaks(server, ids) or (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
