"""`warm_up` drives a throwaway in-process agent and leaves nothing behind.

It runs in a fresh interpreter, as in the launcher: the in-process agent reaps every child of
its process (it is written to be pid 1), which would disturb pytest's own children.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

_PROBE = """
import os
from corral.agent import warm_up
warm_up(rounds=2)
children = [p for p in os.listdir("/proc") if p.isdigit()
            and open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1] == str(os.getpid())]
print(len(children))
"""


def test_warm_up_leaves_no_process_socket_or_directory() -> None:
    before = set(Path(tempfile.gettempdir()).glob("corral-warm-up-*"))
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert probe.stdout.strip() == "0", probe.stderr
    assert set(Path(tempfile.gettempdir()).glob("corral-warm-up-*")) == before
