"""Connection attempts made *inside* a sandbox (python3 of the base template), as its root.

`probe(sbx, targets)` tries every target in parallel and returns which succeeded: a TCP
target counts when a connection was made and the server answered; a UDP target when the
echo came back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

__all__ = ["API_KEY", "Target", "probe", "probe_async", "shell_quote"]

API_KEY = "e2b_corral_test"

Target = tuple[str, str, int]  # (protocol "tcp" | "udp", address, port)

_PROBE = r"""
import json, socket, sys, threading
targets = json.loads(sys.argv[1])
timeout = float(sys.argv[2])
results = [False] * len(targets)
def one(i, proto, host, port):
    try:
        if proto == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(timeout)
            s.sendto(b"ping", (host, port))
            results[i] = s.recv(100) == b"ping"
        else:
            s = socket.create_connection((host, port), timeout=timeout)
            s.settimeout(timeout)
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            results[i] = len(s.recv(100)) > 0
        s.close()
    except OSError:
        results[i] = False
threads = [threading.Thread(target=one, args=(i, *t)) for i, t in enumerate(targets)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(results))
"""


def probe(sbx: Any, targets: Sequence[Target], timeout: float = 1.5) -> dict[Target, bool]:
    """Which of `targets` the sandbox reaches (all tried in parallel, as sandbox root)."""
    argv = ["python3", "-c", _PROBE, json.dumps([list(t) for t in targets]), str(timeout)]
    command = " ".join(shell_quote(a) for a in argv)
    result = sbx.commands.run(command, user="root", timeout=60)
    return dict(zip(targets, json.loads(result.stdout), strict=True))


async def probe_async(sbx: Any, targets: Sequence[Target]) -> dict[Target, bool]:
    argv = ["python3", "-c", _PROBE, json.dumps([list(t) for t in targets]), "1.5"]
    result = await sbx.commands.run(" ".join(shell_quote(a) for a in argv), user="root", timeout=60)
    return dict(zip(targets, json.loads(result.stdout), strict=True))


def shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"
