"""`corral sandbox run -- CMD`: create a sandbox, stream the command's output, kill it."""

from __future__ import annotations

import re
import subprocess

import httpx

import _harness as harness

API_KEY = "e2b_corral_test"


def _corral(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(harness.CORRAL_BIN), "sandbox", "run", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _listed(url: str) -> set[str]:
    answer = httpx.get(f"{url}/v2/sandboxes", headers={"X-API-KEY": API_KEY}, timeout=10)
    return {item["sandboxID"] for item in answer.json()}


def test_streams_both_outputs_exits_with_the_status_and_kills(server_url: str) -> None:
    before = _listed(server_url)
    done = _corral("--url", server_url, "--", "/bin/sh", "-c", "echo out; echo err >&2; exit 3")
    assert done.returncode == 3, done.stderr
    assert done.stdout == "out\n"
    assert done.stderr == "err\n"
    assert _listed(server_url) == before


def test_argv_is_passed_without_a_shell(server_url: str) -> None:
    done = _corral("--url", server_url, "--", "/bin/echo", "a  b", "$HOME", "--flag")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "a  b $HOME --flag\n"


def test_keep_leaves_the_sandbox_running(server_url: str) -> None:
    done = _corral("--url", server_url, "--keep", "--", "true")
    assert done.returncode == 0, done.stderr
    match = re.search(r"sandbox (\S+) kept", done.stderr)
    assert match is not None, done.stderr
    sandbox_id = match.group(1)
    try:
        assert sandbox_id in _listed(server_url)
    finally:
        httpx.delete(
            f"{server_url}/sandboxes/{sandbox_id}", headers={"X-API-KEY": API_KEY}, timeout=30
        )


def test_missing_command_fails_and_kills(server_url: str) -> None:
    before = _listed(server_url)
    done = _corral("--url", server_url, "--", "/no/such/program")
    assert done.returncode != 0
    assert "/no/such/program" in done.stderr
    assert _listed(server_url) == before


def test_unknown_template_is_reported(server_url: str) -> None:
    done = _corral("--url", server_url, "--template", "no-such-template", "--", "true")
    assert done.returncode == 1
    assert "create failed with HTTP 404" in done.stderr, done.stderr


def test_unreachable_server_says_what_to_do() -> None:
    url = f"http://127.0.0.1:{harness.free_port()}"
    done = _corral("--url", url, "--", "true")
    assert done.returncode == 1
    assert f"cannot reach Corral at {url}" in done.stderr
    assert "corral serve" in done.stderr
