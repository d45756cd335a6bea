"""Stdlib start-up steps: listening sockets, connection files, kernel environment."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys

import pytest

from corral.interpreter import bootstrap
from corral.interpreter.bootstrap import (
    kernel_environment,
    listen,
    make_runtime_dir,
    new_connection_info,
    random_uuid,
)


def test_listening_sockets_are_tcp_so_asyncio_disables_nagle() -> None:
    sockets = listen("127.0.0.1", 0)
    try:
        assert len(sockets) == 1
        (sock,) = sockets
        # asyncio sets TCP_NODELAY on accepted sockets only when proto is IPPROTO_TCP.
        assert sock.proto == socket.IPPROTO_TCP
        port = sock.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # accepted into the backlog before anything calls accept()
    finally:
        for sock in sockets:
            sock.close()


def test_connection_info_has_five_distinct_ports_and_a_key() -> None:
    info = new_connection_info("ipython")
    ports = [info[key] for key in info if key.endswith("_port")]
    assert len(set(ports)) == 5
    assert info["ip"] == "127.0.0.1" and info["transport"] == "tcp"
    assert info["signature_scheme"] == "hmac-sha256" and info["kernel_name"] == "ipython"
    assert info["key"] != new_connection_info("ipython")["key"]


def test_random_uuid_is_a_version_4_uuid() -> None:
    value = random_uuid()
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", value
    )


def test_runtime_dir_is_private() -> None:
    path = make_runtime_dir()
    try:
        assert os.stat(path).st_mode & 0o777 == 0o700
    finally:
        shutil.rmtree(path)


def test_kernel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_WIDE", "1")
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = kernel_environment("ipython")
    assert env["SANDBOX_WIDE"] == "1"
    assert env["JPY_PARENT_PID"] == str(os.getpid())
    lib_root = os.path.dirname(os.path.dirname(os.path.dirname(bootstrap.__file__)))
    assert env["PYTHONPATH"].split(os.pathsep) == [lib_root, "/elsewhere"]
    assert kernel_environment("deno")["PYTHONPATH"] == "/elsewhere"


def test_stdlib_only_before_the_kernel_is_spawned() -> None:
    code = (
        "import sys; import corral.interpreter.cli; "
        "heavy = {'jupyter_client', 'zmq', 'starlette', 'uvicorn', 'logging', 'dataclasses'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    src = os.path.dirname(os.path.dirname(os.path.dirname(bootstrap.__file__)))
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": src},
    )
    assert json.loads(result.stdout.replace("'", '"')) == []
