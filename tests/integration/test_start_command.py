"""A template's start command (`START`/`READY`): create waits for it, and fails with its log.

Each test builds a one-line template `FROM base` (no layers of its own, so the build is
instant and uses no disk) into the server's templates dir and removes its manifest after.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from e2b import Sandbox, SandboxException

from corral.templates import NamespaceStepRunner, build_template, parse_recipe

pytestmark = pytest.mark.requires_isolation

TEMPLATES_DIR = Path("/var/lib/corral/templates")


@pytest.fixture
def template_with() -> Iterator[Callable[[str, int], str]]:
    names: list[str] = []

    def build(start: str, ready: int) -> str:
        name = f"test-start-{uuid.uuid4().hex[:10]}"
        recipe = parse_recipe(f"FROM base\nSTART {start}\nREADY {ready}\n")
        build_template(name, recipe, templates_dir=TEMPLATES_DIR, runner=NamespaceStepRunner())
        names.append(name)
        return name

    try:
        yield build
    finally:
        for name in names:
            (TEMPLATES_DIR / f"{name}.json").unlink(missing_ok=True)


def test_create_returns_once_the_ready_port_accepts(
    corral_server: object, server_url: str, template_with: Callable[[str, int], str]
) -> None:
    # The server listens only after half a second, and writes who and where it runs first.
    start = (
        '{ id -un; pwd; echo "$GREETING"; } > /tmp/start-facts; sleep 0.5; '
        "exec python3 -m http.server 49999"
    )
    name = template_with(start, 49999)
    sbx = Sandbox.create(name, envs={"GREETING": "hello"}, timeout=60)
    try:
        answer = httpx.get(
            server_url,
            headers={"E2b-Sandbox-Id": sbx.sandbox_id, "E2b-Sandbox-Port": "49999"},
        )
        assert answer.status_code == 200, answer.text  # no retry: ready when create returned
        assert sbx.files.read("/tmp/start-facts").split() == ["user", "/home/user", "hello"]
        log = sbx.commands.run("stat -c '%U %a' /var/log/corral-start.log").stdout.split()
        assert log == ["root", "644"]
    finally:
        sbx.kill()


def test_a_start_command_that_exits_fails_the_create_with_its_log(
    corral_server: object, template_with: Callable[[str, int], str]
) -> None:
    name = template_with('echo "no config file" >&2; exit 3', 49999)
    before = {info.sandbox_id for info in Sandbox.list().next_items()}
    with pytest.raises(SandboxException) as info:
        Sandbox.create(name, timeout=60)
    message = str(info.value)
    assert "start command exited with status 3 before port 49999 was ready" in message
    assert "no config file" in message
    after = {info.sandbox_id for info in Sandbox.list().next_items()}
    assert after <= before  # the failed sandbox is gone
