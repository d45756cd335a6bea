"""Session fixtures for the end-to-end suites: one real `corral serve`, SDK wiring, leak checks.

* `corral_server` (session): `corral serve --runtime $CORRAL_TEST_RUNTIME` (default
  `namespaces`) on a free port with private state/run dirs and the default templates dir;
  points the E2B SDK at it through `E2B_API_URL`, `E2B_SANDBOX_URL` and `E2B_API_KEY`.
  Its teardown is the leak check of the whole run (see `_check_for_leaks`): it fails the run
  if any sandbox left a process, mount, cgroup or directory behind.
* `sandbox` (function): one `e2b.Sandbox`, always killed.
* `sandbox_factory` (function): makes more sandboxes, all killed at the end of the test.
* `requires_isolation` marker: the test only makes sense with a real isolation boundary; it
  is skipped under `CORRAL_TEST_RUNTIME=fake`.

Every sandbox created through the SDK (sync or async) during the session is recorded, so the
leak check knows exactly which ids are ours even when other Corral servers share the host.
With `CI` or `CORRAL_LEAK_CHECK_STRICT=1` set it also fails on any Corral cgroup created during
the run, whoever made it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import _harness as harness  # noqa: E402  (bench/_harness.py, shared with the benchmarks)

API_KEY = "e2b_corral_test"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires_isolation: needs a real isolation boundary (skipped with the fake runtime)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if harness.runtime_name() != "fake":
        return
    skip = pytest.mark.skip(reason="requires_isolation: CORRAL_TEST_RUNTIME=fake")
    for item in items:
        if "requires_isolation" in item.keywords:
            item.add_marker(skip)


# --- sandbox id registry --------------------------------------------------------------------


class SandboxRegistry:
    """Ids of every sandbox this test session created (thread-safe)."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def add(self, sandbox_id: str) -> None:
        with self._lock:
            self._ids.add(sandbox_id)

    def ids(self) -> set[str]:
        with self._lock:
            return set(self._ids)


def _record_sdk_creates(registry: SandboxRegistry) -> Callable[[], None]:
    """Wrap `Sandbox._create` and `AsyncSandbox._create` to record ids; returns an undo."""
    import e2b

    sync_orig = e2b.Sandbox.__dict__["_create"]
    async_orig = e2b.AsyncSandbox.__dict__["_create"]

    def sync_create(cls: Any, *args: Any, **kwargs: Any) -> Any:
        sbx = sync_orig.__func__(cls, *args, **kwargs)
        registry.add(sbx.sandbox_id)
        return sbx

    async def async_create(cls: Any, *args: Any, **kwargs: Any) -> Any:
        sbx = await async_orig.__func__(cls, *args, **kwargs)
        registry.add(sbx.sandbox_id)
        return sbx

    e2b.Sandbox._create = classmethod(sync_create)  # type: ignore[method-assign,assignment]
    e2b.AsyncSandbox._create = classmethod(async_create)  # type: ignore[method-assign,assignment]

    def undo() -> None:
        e2b.Sandbox._create = sync_orig  # type: ignore[method-assign]
        e2b.AsyncSandbox._create = async_orig  # type: ignore[method-assign]

    return undo


@pytest.fixture(scope="session")
def sandbox_registry() -> Iterator[SandboxRegistry]:
    registry = SandboxRegistry()
    undo = _record_sdk_creates(registry)
    yield registry
    undo()


# --- the server -----------------------------------------------------------------------------


def _strict_leak_check() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("CORRAL_LEAK_CHECK_STRICT") == "1"


def _kill_leftovers(server: harness.CorralServer, registry: SandboxRegistry) -> list[str]:
    """Kill sandboxes still listed by the server; returns their ids (a test forgot them)."""
    headers = {"X-API-KEY": API_KEY}
    try:
        listed = httpx.get(f"{server.url}/v2/sandboxes", headers=headers, timeout=10)
        items = listed.json() if listed.status_code == 200 else []
    except (httpx.HTTPError, ValueError):
        return []
    leftovers = []
    for item in items:
        sandbox_id = str(item.get("sandboxID", ""))
        if not sandbox_id:
            continue
        registry.add(sandbox_id)
        leftovers.append(sandbox_id)
        with contextlib.suppress(httpx.HTTPError):
            httpx.delete(f"{server.url}/sandboxes/{sandbox_id}", headers=headers, timeout=30)
    return leftovers


def _check_for_leaks(
    server: harness.CorralServer,
    registry: SandboxRegistry,
    cgroups_before: set[Path],
    subreaper: bool,
) -> list[str]:
    """Stop the server and list everything our sandboxes left behind."""
    problems: list[str] = []
    leftovers = _kill_leftovers(server, registry)
    if leftovers:
        # Not a leak of the server, but a test that forgot to kill: worth a visible note.
        print(f"\n[corral leak check] sandboxes still running at session end: {leftovers}")
    dirs = [server.state_dir, server.run_dir]
    # 1. With the server still up: killed sandboxes must already be gone (kill cleans up;
    #    a shutdown sweep must not be what hides a leak).
    problems += [
        f"after kill, server running: {leak}"
        for leak in harness.wait_no_leaks(registry.ids(), dirs, timeout=10, server_running=True)
    ]
    # 2. Stop the server (SIGTERM; SIGKILL after a timeout).
    proc = server.process
    assert proc is not None
    server.stop()
    if proc.returncode == -9:
        problems.append("corral serve did not exit within the SIGTERM timeout")
    # 3. After the server: nothing at all of ours.
    extra = harness.all_corral_cgroups() - cgroups_before if _strict_leak_check() else set()
    problems += [
        f"after server stop: {leak}"
        for leak in harness.wait_no_leaks(registry.ids(), dirs, timeout=5, extra_cgroups=extra)
    ]
    if subreaper:
        survivors = harness.live_descendants(os.getpid())
        problems += [
            f"after server stop, outlived the server: {entry}"
            for entry in harness.describe_pids(survivors)
        ]
    return problems


@pytest.fixture(scope="session")
def corral_server(sandbox_registry: SandboxRegistry) -> Iterator[harness.CorralServer]:
    runtime = harness.runtime_name()
    base_manifest = harness.DEFAULT_TEMPLATES_DIR / "base.json"
    if runtime != "fake" and not base_manifest.exists():
        pytest.fail(
            f"{base_manifest} is missing: build it with `corral template build base` "
            "(or run with CORRAL_TEST_RUNTIME=fake)"
        )
    # Orphans of the server (and of its sandboxes) get reparented to this process, so a
    # process that outlives the server is found even if it escaped its parent.
    subreaper = harness.become_subreaper()
    cgroups_before = harness.all_corral_cgroups()
    server = harness.CorralServer(runtime=runtime)
    try:
        server.start()
    except harness.ServerStartError as exc:
        server.remove_workdir()
        pytest.fail(str(exc))
    with pytest.MonkeyPatch.context() as mp:
        for name, value in harness.sdk_env(server).items():
            mp.setenv(name, value)
        mp.delenv("E2B_DEBUG", raising=False)
        mp.delenv("E2B_DOMAIN", raising=False)
        try:
            yield server
        finally:
            problems = _check_for_leaks(server, sandbox_registry, cgroups_before, subreaper)
            log_tail = server.log_tail()
            if not problems:
                server.remove_workdir()
    if problems:
        pytest.fail(
            "Corral leaked resources:\n  "
            + "\n  ".join(problems)
            + f"\n--- server log ({server.log_path}) ---\n{log_tail}",
            pytrace=False,
        )


# --- per-test helpers -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def server_url(corral_server: harness.CorralServer) -> str:
    return corral_server.url


@pytest.fixture
def http(corral_server: harness.CorralServer) -> Iterator[httpx.Client]:
    """A raw HTTP client against the server (no default headers)."""
    with httpx.Client(base_url=corral_server.url, timeout=30) as client:
        yield client


def _kill_quietly(sbx: Any) -> None:
    # already gone, or the server is broken: the leak check will tell
    with contextlib.suppress(Exception):
        sbx.kill()


@pytest.fixture
def sandbox(corral_server: harness.CorralServer) -> Iterator[Any]:
    """One `e2b.Sandbox` from the `base` template, always killed."""
    from e2b import Sandbox

    sbx = Sandbox.create(timeout=120)
    try:
        yield sbx
    finally:
        _kill_quietly(sbx)


@pytest.fixture
def sandbox_factory(corral_server: harness.CorralServer) -> Iterator[Callable[..., Any]]:
    """`make(**create_kwargs)` creates a sandbox that is killed when the test ends."""
    from e2b import Sandbox

    made: list[Any] = []

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("timeout", 120)
        sbx = Sandbox.create(**kwargs)
        made.append(sbx)
        return sbx

    try:
        yield make
    finally:
        for sbx in made:
            _kill_quietly(sbx)


@pytest.fixture(scope="module")
def shared_sandbox(corral_server: harness.CorralServer) -> Iterator[Any]:
    """One sandbox for a whole module of tests that leave no state behind."""
    from e2b import Sandbox

    sbx = Sandbox.create(timeout=600)
    try:
        yield sbx
    finally:
        _kill_quietly(sbx)
