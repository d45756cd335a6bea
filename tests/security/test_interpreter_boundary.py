"""The code interpreter inside the boundary: kernels are ordinary sandbox processes.

Model-written code runs in Jupyter kernels started by the sandbox's port-49999 server, so
everything `test_escapes`/`test_isolation` prove for commands must hold for kernels too:
they run as the sandbox's `user` (a shifted host uid), filtered by seccomp, in the
sandbox's cgroups; a kernel that eats all memory is killed inside (reported, restartable)
while the server, the agent and a neighbour keep working; and a private sandbox's
interpreter port needs the traffic token like any other port.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_isolation import assert_isolated  # the canary guard shared by the security suites

pytestmark = pytest.mark.requires_isolation

TEMPLATE = "code-interpreter-v1"
TEMPLATES_DIR = Path("/var/lib/corral/templates")

if not (TEMPLATES_DIR / f"{TEMPLATE}.json").exists():
    pytest.skip(
        f"template {TEMPLATE} is not built (scripts/setup.sh builds it)", allow_module_level=True
    )


@pytest.fixture
def interpreter(corral_server: object) -> Iterator[Any]:
    from e2b_code_interpreter import Sandbox  # type: ignore[import-untyped]

    sbx = Sandbox.create(timeout=120)
    try:
        yield sbx
    finally:
        sbx.kill()


def _host_status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def _sandbox_host_pids(sandbox_id: str) -> list[int]:
    for root in (Path("/sys/fs/cgroup/pids/corral"), Path("/sys/fs/cgroup/corral")):
        procs = root / sandbox_id / "cgroup.procs"
        if procs.exists():
            return [int(pid) for pid in procs.read_text().split()]
    raise AssertionError(f"no cgroup found for sandbox {sandbox_id}")


def test_kernels_are_confined_like_every_sandbox_process(
    interpreter: Any, host_canary: Path
) -> None:
    assert_isolated(interpreter, host_canary)
    execution = interpreter.run_code(
        f"import os; (os.getuid(), os.path.exists({str(host_canary)!r}), os.getpid())"
    )
    assert execution.error is None, execution.error
    assert execution.text.startswith("(1000, False, ")
    pids = _sandbox_host_pids(interpreter.sandbox_id)
    # The port-49999 server and the python kernel it started (`corral.interpreter.python_kernel`).
    interpreter_processes = [
        pid for pid in pids if b"corral.interpreter" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    assert len(interpreter_processes) >= 2, "the server and its python kernel are not in the cgroup"
    for pid in interpreter_processes:
        status = _host_status(pid)
        host_uid = int(status["Uid"].split()[0])
        assert host_uid >= 100000, f"process {pid} runs as host uid {host_uid}"
        assert status["Seccomp"] == "2", f"process {pid} is not filtered"
        assert status["CapEff"] == "0000000000000000"


def test_a_memory_bomb_kills_only_the_kernel(interpreter: Any) -> None:
    interpreter.run_code("survivor = 42")
    bomb = interpreter.run_code("x = bytearray(4 * 1024**3)", timeout=60)
    assert bomb.error is not None
    assert bomb.error.name in {"MemoryError", "KernelDied"}, bomb.error
    # The sandbox (agent + server) lives on; the context works again, with or without restart.
    assert interpreter.commands.run("echo alive").stdout == "alive\n"
    after = interpreter.run_code("1 + 1")
    if after.error is not None:
        interpreter.restart_code_context(None)
        after = interpreter.run_code("1 + 1")
    assert after.error is None and after.text == "2"


def test_a_private_sandbox_interpreter_needs_the_traffic_token(server_url: str) -> None:
    from e2b_code_interpreter import Sandbox

    sbx = Sandbox.create(timeout=120, network={"allow_public_traffic": False})
    try:
        assert sbx.run_code("6 * 7").text == "42"  # the SDK sends the token
        headers = {"E2b-Sandbox-Id": sbx.sandbox_id, "E2b-Sandbox-Port": "49999"}
        body = {"code": "open('/tmp/pwned', 'w')", "context_id": None, "language": None}
        answer = httpx.post(f"{server_url}/execute", json=body, headers=headers, timeout=30)
        assert answer.status_code == 403, answer.text
        contexts = httpx.get(f"{server_url}/contexts", headers=headers, timeout=30)
        assert contexts.status_code == 403
        assert sbx.commands.run("test -e /tmp/pwned || echo absent").stdout == "absent\n"
    finally:
        sbx.kill()
