"""Benchmarks of capabilities that land one by one: files, pause/resume, fork.

Each measuring function tries the capability through the official SDK; when the server does
not offer it yet (an SDK error such as HTTP 501 or 404 on the first attempt) the series is
returned `unavailable` with that reason, so the report says "not available" instead of
failing or silently dropping it. A capability that works is measured like any other series.

* file upload / download: `sbx.files.write(path, bytes)` then `sbx.files.read(path,
  format="bytes")` of a 1 MiB and a 100 MiB file (content checked), on one sandbox;
* pause → resume: `sbx.beta_pause()`, then `Sandbox.connect(id)` + `commands.run("true")`;
* fork: `sbx.fork(count=1)` → first `commands.run("true")` in the fork.

The code interpreter has its own benchmark, `bench/code_interpreter.py`.

    /work/main/.venv/bin/python bench/capabilities.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

import _harness as harness
from _results import Latencies

__all__ = [
    "FILE_SIZES",
    "measure_files",
    "measure_fork",
    "measure_pause_resume",
]

MIB = 1024 * 1024
FILE_SIZES = (1 * MIB, 100 * MIB)


def _series(
    name: str, n: int, one: Callable[[], float], *, note: str = "", size: int | None = None
) -> Latencies:
    """`n` calls of `one`; if the very first call fails, the capability is unavailable."""
    result = Latencies(name, note=note)
    for index in range(n):
        result.attempts += 1
        try:
            result.samples.append(one())
        except Exception as exc:
            if index == 0:
                text = f"{type(exc).__name__}: {exc}".strip()
                return Latencies(name, unavailable=text[:300], note=note)
            result.record_error(exc)
    if size is not None and result.samples:
        p50 = result.percentile(50) or 1.0
        result.note = f"{size / p50 / 1e6:.0f} MB/s at p50" + (f"; {note}" if note else "")
    return result


def measure_files(
    server: harness.CorralServer, runs: dict[int, int], ids: list[str]
) -> list[Latencies]:
    """Upload and download throughput per file size (`runs`: size → number of runs)."""
    with harness.environ(harness.sdk_env(server)):
        from e2b import Sandbox

        sbx = Sandbox.create(timeout=600)
        ids.append(sbx.sandbox_id)
        results = []
        try:
            for size, n in runs.items():
                data = os.urandom(size)
                path = f"/tmp/bench-{size}"
                label = f"{size // MIB} MiB"

                def upload(path: str = path, data: bytes = data) -> float:
                    start = time.perf_counter()
                    sbx.files.write(path, data)
                    return time.perf_counter() - start

                def download(path: str = path, data: bytes = data) -> float:
                    start = time.perf_counter()
                    got = sbx.files.read(path, format="bytes")
                    elapsed = time.perf_counter() - start
                    if bytes(got) != data:
                        raise AssertionError(f"downloaded {len(got)} bytes differ from upload")
                    return elapsed

                up = _series(f"file upload {label}", n, upload, size=size)
                results.append(up)
                if up.unavailable is not None:
                    down = Latencies(f"file download {label}", unavailable="upload unavailable")
                else:
                    down = _series(f"file download {label}", n, download, size=size)
                results.append(down)
        finally:
            sbx.kill()
    return results


def measure_pause_resume(server: harness.CorralServer, n: int, ids: list[str]) -> list[Latencies]:
    """`beta_pause()` latency, and resume (`connect`) → first command output."""
    pause = Latencies("pause")
    resume = Latencies("resume → first output")
    with harness.environ(harness.sdk_env(server)):
        from e2b import Sandbox

        for index in range(n):
            sbx = Sandbox.create(timeout=300)
            ids.append(sbx.sandbox_id)
            try:
                sbx.commands.run("true")
                for series, step in (
                    (pause, lambda: sbx.beta_pause()),  # noqa: B023
                    (resume, lambda: Sandbox.connect(sbx.sandbox_id).commands.run("true")),  # noqa: B023
                ):
                    series.attempts += 1
                    start = time.perf_counter()
                    try:
                        step()
                    except Exception as exc:
                        if index == 0:
                            text = f"{type(exc).__name__}: {exc}".strip()[:300]
                            pause.unavailable = pause.unavailable or text
                            resume.unavailable = text
                            return [pause, resume]
                        series.record_error(exc)
                        break
                    series.samples.append(time.perf_counter() - start)
            finally:
                try:
                    sbx.kill()
                except Exception:
                    pass
    return [pause, resume]


def measure_fork(server: harness.CorralServer, n: int, ids: list[str]) -> Latencies:
    """`sbx.fork(count=1)` → first command output in the fork."""
    with harness.environ(harness.sdk_env(server)):
        from e2b import Sandbox

        parent = Sandbox.create(timeout=300)
        ids.append(parent.sandbox_id)
        try:

            def one() -> float:
                start = time.perf_counter()
                forks = parent.fork(count=1)
                child = forks[0]
                if isinstance(child, Exception):
                    raise child
                ids.append(child.sandbox_id)
                try:
                    child.commands.run("true")
                    return time.perf_counter() - start
                finally:
                    child.kill()

            return _series("fork → first output", n, one)
        finally:
            parent.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=harness.bench_n(5))
    args = parser.parse_args()
    with harness.benchmark_server() as (server, ids):
        results = measure_files(server, {size: args.runs for size in FILE_SIZES}, ids)
        results += measure_pause_resume(server, args.runs, ids)
        results.append(measure_fork(server, args.runs, ids))
    for result in results:
        print(result.line() + (f"  [{result.note}]" if result.note else ""))
    return harness.report_leaks(server, ids)


if __name__ == "__main__":
    sys.exit(main())
