"""Host memory per idle sandbox: `density.py` at N sandboxes (`CORRAL_BENCH_N`, default 50).

Prints, per sandbox: the drop of `MemAvailable`, the sandbox cgroup's memory usage, the PSS
of the processes inside the sandbox, the growth of the server's own PSS, and the
`MemAvailable` drop per idle `unshare … sleep` process measured in the same run (see
`density.py` for what each figure includes).

    /work/main/.venv/bin/python bench/idle_memory.py
"""

from __future__ import annotations

import sys

import _harness as harness
import density

__all__: list[str] = []


def main() -> int:
    n = harness.bench_n(50)
    with harness.benchmark_server() as (server, ids):
        result = density.measure(server, n, ids, baseline_count=n)
    print(f"runtime={server.runtime} idle sandboxes={result.held} ({result.stop_reason})")
    density.print_memory(result)
    return harness.report_leaks(server, ids) or (0 if result.held == n else 1)


if __name__ == "__main__":
    sys.exit(main())
