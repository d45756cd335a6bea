"""File transfer through the official SDK: `files.write` / `files.read` throughput and memory.

For 1 MiB and 100 MiB: N uploads as `bytes` (the SDK sends multipart/form-data), N uploads
with `use_octet_stream=True`, and N downloads (`format="bytes"`); prints MB/s at the p50
time of each. Then one 1 GiB upload (a streamed iterable, octet-stream) and one 1 GiB
download (`format="stream"`), during which the RSS of the server process and of the
sandbox's agent is sampled every 20 ms: prints their baseline and peak.

    /work/main/.venv/bin/python bench/file_transfer.py      (CORRAL_BENCH_N, default 10)
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _harness as harness

__all__ = ["FileTransfer", "PeakRss", "StreamedTransfer", "agent_pid", "measure", "stream_through"]

MIB = 1024 * 1024
SIZES = (("1 MiB", MIB), ("100 MiB", 100 * MIB))
BIG = 1024 * MIB


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakRss:
    """Samples the RSS of `pids` every 20 ms in a thread until `stop()`."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.base = {pid: _rss_kib(pid) for pid in pids}
        self.peak = dict(self.base)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for pid in self.pids:
                self.peak[pid] = max(self.peak[pid], _rss_kib(pid))

    def stop(self) -> dict[int, tuple[float, float]]:
        """pid → (baseline MiB, peak MiB)."""
        self._stop.set()
        self._thread.join()
        return {pid: (self.base[pid] / 1024, self.peak[pid] / 1024) for pid in self.pids}


def agent_pid(server: harness.CorralServer, sandbox_id: str) -> int:
    """Host pid of a sandbox's agent: pid 1 of a pid namespace in the sandbox's cgroup
    (namespaces runtime), or the pid the fake runtime recorded."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cgroups = Path(f"/proc/{pid}/cgroup").read_text()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        nspid = next((line.split()[1:] for line in status.splitlines() if "NSpid" in line), [])
        if sandbox_id in cgroups and len(nspid) > 1 and nspid[-1] == "1":
            return int(pid)
    for pid_file in server.run_dir.rglob(f"{sandbox_id}/agent.pid"):
        return int(pid_file.read_text().split()[0])
    raise RuntimeError(f"no agent process found for sandbox {sandbox_id}")


@dataclass
class FileTransfer:
    """MB/s at the p50 time per (direction, size), and RSS (baseline, peak) in MiB."""

    n: int
    throughput: dict[str, float] = field(default_factory=dict)
    memory: dict[str, tuple[float, float]] = field(default_factory=dict)


def _p50_mb_per_s(size: int, n: int, one: Callable[[], None]) -> float:
    one()  # warm-up (connections, page cache)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        one()
        times.append(time.perf_counter() - start)
    return size / statistics.median(times) / 1e6


def measure(server: harness.CorralServer, n: int, ids: list[str]) -> FileTransfer:
    """Throughput and memory on one fresh sandbox (its id goes to `ids`)."""
    result = FileTransfer(n=n)
    with harness.environ(harness.sdk_env(server)):
        from e2b import Sandbox

        sbx = Sandbox.create(timeout=900)
        ids.append(sbx.sandbox_id)
        try:
            _throughput(sbx, n, result)
            _memory(server, sbx, result)
        finally:
            sbx.kill()
    return result


def _throughput(sbx: Any, n: int, result: FileTransfer) -> None:
    for label, size in SIZES:
        data = os.urandom(size)
        path = f"/tmp/bench-{size}"

        def upload_multipart(data: bytes = data, path: str = path) -> None:
            sbx.files.write(path, data)

        def upload_octet(data: bytes = data, path: str = path) -> None:
            sbx.files.write(path, data, use_octet_stream=True)

        def download(size: int = size, path: str = path) -> None:
            assert len(sbx.files.read(path, format="bytes")) == size

        result.throughput[f"upload {label} (multipart)"] = _p50_mb_per_s(size, n, upload_multipart)
        result.throughput[f"upload {label} (octet-stream)"] = _p50_mb_per_s(size, n, upload_octet)
        result.throughput[f"download {label}"] = _p50_mb_per_s(size, n, download)
        sbx.commands.run(f"rm -f {path}")


@dataclass(frozen=True)
class StreamedTransfer:
    """One streamed upload and download of the same file, with the RSS seen meanwhile."""

    uploaded: int
    """Size of the file in the sandbox after the upload (`stat`)."""
    received: int
    """Bytes the streamed download returned."""
    upload_rss: dict[int, tuple[float, float]]
    """pid → (baseline MiB, peak MiB) during the upload."""
    download_rss: dict[int, tuple[float, float]]
    """The same during the download."""


def stream_through(sbx: Any, path: str, size: int, pids: list[int]) -> StreamedTransfer:
    """Upload `size` bytes to `path` as a stream of 1 MiB blocks (never whole in memory), read
    it back as a stream, remove it; the RSS of `pids` is sampled during each direction."""
    block = os.urandom(MIB)

    def chunks() -> Iterator[bytes]:
        for _ in range(size // MIB):
            yield block

    peak = PeakRss(pids)
    sbx.files.write(path, chunks())
    upload_rss = peak.stop()
    uploaded = int(sbx.commands.run(f"stat -c %s {path}").stdout.strip())
    peak = PeakRss(pids)
    reader = sbx.files.read(path, format="stream")
    received = 0
    try:
        for piece in reader:
            received += len(piece)
    finally:
        reader.close()
    download_rss = peak.stop()
    sbx.commands.run(f"rm -f {path}")
    return StreamedTransfer(uploaded, received, upload_rss, download_rss)


def _memory(server: harness.CorralServer, sbx: Any, result: FileTransfer) -> None:
    assert server.process is not None
    pids = {"server": server.process.pid, "agent": agent_pid(server, sbx.sandbox_id)}
    transfer = stream_through(sbx, "/tmp/bench-big", BIG, list(pids.values()))
    if transfer.received != BIG:
        raise RuntimeError(f"1 GiB download returned {transfer.received} bytes")
    for name, pid in pids.items():
        result.memory[f"{name} during 1 GiB upload"] = transfer.upload_rss[pid]
        result.memory[f"{name} during 1 GiB download"] = transfer.download_rss[pid]


def main() -> int:
    n = harness.bench_n(10)
    with harness.benchmark_server() as (server, ids):
        result = measure(server, n, ids)
    print(f"runtime={server.runtime} n={n} (MB = 10^6 bytes, at the p50 time)")
    for name, mb_per_s in result.throughput.items():
        print(f"{name:34s} {mb_per_s:8.0f} MB/s")
    for name, (base, peak) in result.memory.items():
        print(f"RSS {name:30s} baseline {base:7.1f} MiB  peak {peak:7.1f} MiB")
    return harness.report_leaks(server, ids)


if __name__ == "__main__":
    sys.exit(main())
