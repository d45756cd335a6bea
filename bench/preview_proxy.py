"""Preview URLs: the cost of the path client → router → agent tunnel → service in the sandbox.

One sandbox runs `tests/integration/preview_service.py` (stdlib HTTP/1.1 server) on port
8080. Measured twice, the same requests against the same service:

* through the preview path: httpx from the host to the server with Host
  `8080-<id>.corral.localhost` (keep-alive client; the router pools the tunnel);
* directly: a Python `http.client` loop *inside* the sandbox against 127.0.0.1:8080.

Prints round-trip p50/p95/p99 of `GET /peer` (N requests after warm-up) and the throughput
of a 100 MiB chunked download (`GET /bytes`, best and median of 5), both ways; through the
preview path also with curl (the httpx client itself is a limit at these rates).

    /work/main/.venv/bin/python bench/preview_proxy.py      (CORRAL_BENCH_N, default 500)
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

import _harness as harness
from _results import Latencies

__all__ = ["measure", "series"]

MIB = 1024 * 1024
DOWNLOAD = 100 * MIB
DOWNLOADS = 5
PORT = 8080
SERVICE = Path(__file__).resolve().parents[1] / "tests" / "integration" / "preview_service.py"

_INSIDE = r"""
import http.client, json, sys, time
n, size, rounds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", 8080)
def get(path):
    conn.request("GET", path)
    response = conn.getresponse()
    total = 0
    while chunk := response.read(1 << 20):
        total += len(chunk)
    return total
for _ in range(min(n, 50)):
    get("/peer")
latencies = []
for _ in range(n):
    start = time.perf_counter()
    get("/peer")
    latencies.append(time.perf_counter() - start)
downloads = []
for _ in range(rounds):
    start = time.perf_counter()
    assert get(f"/bytes?n={size}") == size
    downloads.append(time.perf_counter() - start)
print(json.dumps({"latencies": latencies, "downloads": downloads}))
"""


def _preview(
    server: harness.CorralServer, host: str, n: int, downloads: int
) -> dict[str, list[float]]:
    with httpx.Client(base_url=server.url, headers={"host": host}, timeout=120) as client:
        for _ in range(min(n, 50)):
            client.get("/peer").raise_for_status()
        latencies = []
        for _ in range(n):
            start = time.perf_counter()
            client.get("/peer").raise_for_status()
            latencies.append(time.perf_counter() - start)
        times = []
        for _ in range(downloads):
            start = time.perf_counter()
            total = 0
            with client.stream("GET", f"/bytes?n={DOWNLOAD}") as response:
                for chunk in response.iter_raw(1 << 20):
                    total += len(chunk)
            assert total == DOWNLOAD
            times.append(time.perf_counter() - start)
    return {"latencies": latencies, "downloads": times}


def _curl(server: harness.CorralServer, host: str, downloads: int) -> list[float]:
    """Download times with curl (a C client), when it is installed; else []."""
    curl = shutil.which("curl")
    if curl is None:
        return []
    url = f"{server.url}/bytes?n={DOWNLOAD}"
    argv = [curl, "-sf", "-o", "/dev/null", "-H", f"host: {host}", url]
    return harness.time_command(argv, downloads)


def measure(
    server: harness.CorralServer, n: int, ids: list[str], downloads: int = DOWNLOADS
) -> dict[str, Any]:
    """`n` round trips and `downloads` 100 MiB downloads both ways, as `{"preview"|"direct":
    {"latencies": [...], "downloads": [...]}}` (plus `"preview (curl)": {"downloads": [...]}`,
    empty without curl)."""
    from e2b import Sandbox

    with harness.environ(harness.sdk_env(server)):
        sbx = Sandbox.create(timeout=600)
        ids.append(sbx.sandbox_id)
        try:
            sbx.files.write("/tmp/preview_service.py", SERVICE.read_text())
            sbx.files.write("/tmp/inside.py", _INSIDE)
            sbx.commands.run(f"python3 /tmp/preview_service.py {PORT}", background=True)
            sbx.commands.run(
                f"for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/{PORT}) 2>/dev/null "
                "&& exit 0; sleep 0.1; done; exit 1"
            )
            host = f"{PORT}-{sbx.sandbox_id}.corral.localhost"
            preview = _preview(server, host, n, downloads)
            preview_curl = {"downloads": _curl(server, host, downloads)}
            inside = sbx.commands.run(
                f"python3 /tmp/inside.py {n} {DOWNLOAD} {downloads}", timeout=600
            )
            direct = json.loads(inside.stdout)
        finally:
            sbx.kill()
    return {"preview": preview, "preview (curl)": preview_curl, "direct": direct}


def series(result: dict[str, Any]) -> list[Latencies]:
    """`measure`'s result as latency series; downloads carry MB/s (10^6 bytes) at p50."""
    found = []
    for way, label in (("preview", "preview URL"), ("direct", "direct, inside the sandbox")):
        samples = result[way]["latencies"]
        found.append(Latencies(f"GET /peer round trip, {label}", samples, len(samples)))
    ways = (
        ("preview", "preview URL (httpx)"),
        ("preview (curl)", "preview URL (curl)"),
        ("direct", "direct, inside the sandbox"),
    )
    for way, label in ways:
        times = result[way]["downloads"]
        if times:
            download = Latencies(f"100 MiB download, {label}", times, len(times))
            download.note = f"{DOWNLOAD / (download.percentile(50) or 1) / 1e6:.0f} MB/s at p50"
            found.append(download)
    return found


def main() -> int:
    n = harness.bench_n(500)
    with harness.benchmark_server() as (server, ids):
        result = measure(server, n, ids)
    print(f"runtime={server.runtime} n={n} (MB = 10^6 bytes)")
    for way in ("preview", "direct"):
        print(harness.format_latencies(f"GET /peer round trip, {way:7s}", result[way]["latencies"]))
    for way in ("preview", "preview (curl)", "direct"):
        times = result[way]["downloads"]
        if not times:
            continue
        best, median = min(times), statistics.median(times)
        print(
            f"100 MiB download, {way:14s}: best {DOWNLOAD / best / 1e6:7.0f} MB/s, "
            f"median {DOWNLOAD / median / 1e6:7.0f} MB/s ({len(times)} runs)"
        )
    return harness.report_leaks(server, ids)


if __name__ == "__main__":
    sys.exit(main())
