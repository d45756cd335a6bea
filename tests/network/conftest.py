"""Fixtures of the network suites: a fake internet and `corral serve` instances wired to it.

`fake_internet` is a namespace the test made (see `fake_internet.py`); `network_server` is
a `corral serve --uplink-netns <it> --dns-upstream <its DNS>`, so every packet a sandbox
sends stays between the sandbox, the server's gateway namespace and the fake internet.
`make_network_server` starts more servers (each with its own fake internet; two gateways
must not share an uplink namespace). Teardown removes every namespace, veth, mount and
directory even when a test or a server failed, and fails if the server left any.

Probes run inside sandboxes: see `sandbox_probe.py`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from fake_internet import FakeInternet  # noqa: E402
from gateway_host import running_server  # noqa: E402
from sandbox_probe import API_KEY  # noqa: E402

import _harness as harness  # noqa: E402


def _skip_unless_real() -> None:
    if harness.runtime_name() != "namespaces":
        pytest.skip("network tests need the namespaces runtime (the fake one isolates nothing)")
    if os.geteuid() != 0:
        pytest.skip("network tests need root")


@pytest.fixture(scope="session")
def fake_internet() -> Iterator[FakeInternet]:
    _skip_unless_real()
    inet = FakeInternet()
    try:
        yield inet
    finally:
        inet.close()


@pytest.fixture(scope="session")
def network_server(fake_internet: FakeInternet) -> Iterator[harness.CorralServer]:
    with running_server(fake_internet) as server:
        yield server


@pytest.fixture
def make_network_server() -> Iterator[Callable[..., harness.CorralServer]]:
    """`make(*serve_options)`: one more server, with a fake internet of its own."""
    _skip_unless_real()
    stack = contextlib.ExitStack()

    def make(*extra: str) -> harness.CorralServer:
        inet = FakeInternet()
        stack.callback(inet.close)
        return stack.enter_context(running_server(inet, *extra))

    with stack:
        yield make


@pytest.fixture
def sdk_to(monkeypatch: pytest.MonkeyPatch) -> Callable[[harness.CorralServer], None]:
    """Point the E2B SDK at `server` for this test."""

    def point(server: harness.CorralServer) -> None:
        for name, value in harness.sdk_env(server).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("E2B_API_KEY", API_KEY)
        monkeypatch.delenv("E2B_DOMAIN", raising=False)

    return point


@pytest.fixture
def net_sandbox(
    network_server: harness.CorralServer, sdk_to: Callable[[harness.CorralServer], None]
) -> Iterator[Callable[..., Any]]:
    """`make(**create_kwargs)`: an `e2b.Sandbox` on `network_server`, killed at the end."""
    from e2b import Sandbox

    sdk_to(network_server)
    made: list[Any] = []

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("timeout", 120)
        sbx = Sandbox.create(**kwargs)
        made.append(sbx)
        return sbx

    yield make
    for sbx in made:
        with contextlib.suppress(Exception):
            sbx.kill()


# -- N2's suites: a fake internet with names (tls_internet.py) ---------------------------


@pytest.fixture(scope="session")
def named_internet() -> Iterator[tuple[harness.CorralServer, Any]]:
    """A server whose uplink is a `TlsInternet` (DNS names, HTTPS with SNI, HTTP Host)."""
    from tls_internet import TlsInternet

    _skip_unless_real()
    inet = TlsInternet()
    try:
        with running_server(inet) as server:  # type: ignore[arg-type]
            yield server, inet
    finally:
        inet.close()


@pytest.fixture
def named_sandbox(
    named_internet: tuple[harness.CorralServer, Any], sdk_to: Callable[[Any], None]
) -> Iterator[Callable[..., Any]]:
    """`make(allow_out)`: a sandbox of `named_internet` without internet access except
    `allow_out`, with `/tmp/n2_probe.py` and the fake internet's CA in `/tmp/n2-ca.pem`."""
    from e2b import Sandbox
    from name_probes import PROBE

    server, inet = named_internet
    sdk_to(server)
    made: list[Any] = []

    def make(allow_out: list[str]) -> Any:
        sbx = Sandbox.create(
            timeout=120, allow_internet_access=False, network={"allow_out": allow_out}
        )
        made.append(sbx)
        sbx.files.write("/tmp/n2_probe.py", PROBE)
        sbx.files.write("/tmp/n2-ca.pem", inet.ca_path.read_text())
        return sbx

    yield make
    for sbx in made:
        with contextlib.suppress(Exception):
            sbx.kill()
