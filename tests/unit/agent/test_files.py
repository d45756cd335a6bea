"""`/files` of a standalone agent over its socket: ownership, body forms, errors, 507, memory.

The agent runs on the host here (as root), so every path is under the test's own temp dir.
Disk-full is real: the agent of `full_agent` runs in a private mount namespace
(`unshare -m`) with a 256 KiB tmpfs mounted over one directory, which only it can see and
which disappears with it.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from .harness import AgentProcess

TOKEN = {"x-access-token": "test-token"}
OCTET = {**TOKEN, "content-type": "application/octet-stream"}


@pytest.fixture
def user_agent(agent_factory: Callable[..., AgentProcess], tmp_path: Path) -> AgentProcess:
    """An agent whose default user is `user` (uid 4242) with HOME in the temp dir."""
    etc = tmp_path / "etc"
    etc.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    os.chown(home, 4242, 4242)
    (etc / "passwd").write_text(
        f"root:x:0:0::{tmp_path}/roothome:/bin/sh\nuser:x:4242:4243::{home}:/bin/sh\n"
    )
    (etc / "group").write_text("root:x:0:\nuser:x:4243:\n")
    return agent_factory(etc_dir=str(etc), default_user="user")


def post(agent: AgentProcess, **kwargs: Any) -> httpx.Response:
    return agent.client.http.post("/files", **kwargs)


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body = response.json()
    assert body["code"] == status
    return str(body["message"])


def test_files_are_owned_by_the_user_with_0644_and_parents_0755(
    user_agent: AgentProcess, tmp_path: Path
) -> None:
    response = post(user_agent, params={"path": "a/b/c.txt"}, content=b"x", headers=OCTET)
    assert response.status_code == 200, response.text
    home = tmp_path / "home"
    assert response.json() == [{"path": f"{home}/a/b/c.txt", "name": "c.txt", "type": "file"}]
    for path, mode in ((home / "a", 0o755), (home / "a/b", 0o755), (home / "a/b/c.txt", 0o644)):
        info = path.stat()
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (4242, 4243, mode)
    as_root = post(
        user_agent,
        params={"path": str(home / "r.txt"), "username": "root"},
        content=b"r",
        headers=OCTET,
    )
    assert as_root.status_code == 200
    assert (home / "r.txt").stat().st_uid == 0
    unknown = post(user_agent, params={"path": "/x", "username": "ghost"}, headers=OCTET)
    assert error(unknown, 401) == "invalid username: 'ghost'"


def test_multipart_filenames_are_paths_and_path_param_overrides(
    agent: AgentProcess, tmp_path: Path
) -> None:
    files = [
        ("file", (str(tmp_path / "one"), b"1")),
        ("ignored", ("x", b"never written")),
        ("file", (str(tmp_path / "sub/two"), b"22")),
        ("file", (str(tmp_path / 'quo"te'), b"3")),
    ]
    response = post(agent, files=files, headers=TOKEN)
    assert [e["path"] for e in response.json()] == [
        str(tmp_path / "one"),
        str(tmp_path / "sub/two"),
        str(tmp_path / 'quo"te'),
    ]
    assert (tmp_path / "sub/two").read_bytes() == b"22"
    assert not (tmp_path / "x").exists()
    override = post(
        agent,
        params={"path": str(tmp_path / "over")},
        files={"file": ("/elsewhere/name", b"o")},
        headers=TOKEN,
    )
    assert override.json()[0]["path"] == str(tmp_path / "over")
    assert (tmp_path / "over").read_bytes() == b"o"


def test_malformed_uploads_are_400(agent: AgentProcess, tmp_path: Path) -> None:
    target = str(tmp_path / "t")
    boundary = {**TOKEN, "content-type": "multipart/form-data; boundary=xyz"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"params": {"path": target}, "content": b"x", "headers": TOKEN}, "Content-Type"),
        ({"content": b"x", "headers": OCTET}, "path parameter"),
        ({"content": b"x", "headers": {**TOKEN, "content-type": "multipart/form-data"}}, "bound"),
        ({"content": b"--xyz\r\n", "headers": boundary}, "closing boundary"),
        ({"content": b"--xyz--\r\n", "headers": boundary}, "no part named 'file'"),
        (
            {
                "content": b'--xyz\r\ncontent-disposition: form-data; name="file"\r\n\r\nx\r\n'
                b"--xyz--\r\n",
                "headers": boundary,
            },
            "no filename",
        ),
        (
            {
                "params": {"path": target},
                "content": b"junk",
                "headers": {**OCTET, "content-encoding": "gzip"},
            },
            "invalid gzip",
        ),
        (
            {
                "params": {"path": target},
                "content": b"x",
                "headers": {**OCTET, "content-encoding": "br"},
            },
            "Content-Encoding",
        ),
        (
            {"params": {"path": target}, "headers": {**OCTET, "x-metadata-k": "\u00e9".encode()}},
            "metadata",
        ),
        ({"params": {"path": str(tmp_path)}, "content": b"x", "headers": OCTET}, "is a directory"),
    ]
    for kwargs, message in cases:
        assert message in error(post(agent, **kwargs), 400), kwargs
    assert error(agent.client.http.put("/files", headers=TOKEN), 405)
    refused = agent.client.http.get(
        "/files", params={"path": target}, headers={**TOKEN, "accept-encoding": "identity;q=0"}
    )
    assert error(refused, 406)


def test_a_request_on_the_same_connection_after_an_early_error_still_works(
    agent: AgentProcess, tmp_path: Path
) -> None:
    """An error answered mid-body drains the rest: the keep-alive connection stays usable."""
    body = b"--b\r\n" + b'content-disposition: form-data; name="file"\r\n\r\n' + b"x" * (4 << 20)
    bad = post(
        agent,
        content=body,
        headers={**TOKEN, "content-type": "multipart/form-data; boundary=b"},
    )
    assert "no filename" in error(bad, 400)
    ok = post(agent, params={"path": str(tmp_path / "after")}, content=b"ok", headers=OCTET)
    assert ok.status_code == 200


def test_download_headers_and_gzip(agent: AgentProcess, tmp_path: Path) -> None:
    (tmp_path / "d.json").write_bytes(b'{"a": 1}' * 1000)
    (tmp_path / "ü n.bin").write_bytes(b"u")
    http = agent.client.http
    plain = http.get("/files", params={"path": str(tmp_path / "d.json")}, headers=TOKEN)
    assert plain.headers["content-type"] == "application/json"
    assert plain.headers["content-disposition"] == 'inline; filename="d.json"'
    assert "content-encoding" not in plain.headers
    gz_headers = {**TOKEN, "accept-encoding": "gzip"}
    with http.stream(
        "GET", "/files", params={"path": str(tmp_path / "d.json")}, headers=gz_headers
    ) as response:
        assert response.headers["content-encoding"] == "gzip"
        raw = b"".join(response.iter_raw())
    assert gzip.decompress(raw) == b'{"a": 1}' * 1000 and len(raw) < 1000
    odd = http.get("/files", params={"path": str(tmp_path / "ü n.bin")}, headers=TOKEN)
    assert odd.headers["content-type"] == "application/octet-stream"
    assert odd.headers["content-disposition"] == "inline; filename*=UTF-8''%C3%BC%20n.bin"


def test_an_upload_replaces_metadata(agent: AgentProcess, tmp_path: Path) -> None:
    target = tmp_path / "m"
    first = post(
        agent,
        params={"path": str(target)},
        content=b"1",
        headers={**OCTET, "x-metadata-A": "1", "x-metadata-b": "2"},
    )
    assert first.json()[0]["metadata"] == {"a": "1", "b": "2"}
    os.setxattr(target, "user.other", b"kept")
    post(agent, params={"path": str(target)}, content=b"2", headers={**OCTET, "x-metadata-c": "3"})
    assert sorted(os.listxattr(target)) == ["user.e2b.c", "user.other"]


@pytest.fixture
def full_agent(
    agent_factory: Callable[..., AgentProcess], tmp_path: Path
) -> tuple[AgentProcess, Path]:
    if shutil.which("unshare") is None:
        pytest.skip("needs util-linux unshare")
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    mount_then_exec = 'mount -t tmpfs -o size=256k corral-test-tiny "$0" && exec "$@"'
    wrapper = ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount_then_exec]
    return agent_factory(wrapper=[*wrapper, str(tiny)]), tiny


def test_a_full_disk_is_507(full_agent: tuple[AgentProcess, Path]) -> None:
    agent, tiny = full_agent
    big = os.urandom(1 << 20)
    response = post(agent, params={"path": str(tiny / "big")}, content=big, headers=OCTET)
    assert error(response, 507) == "not enough disk space available"
    multipart = post(agent, files={"file": (str(tiny / "big2"), big)}, headers=TOKEN)
    assert error(multipart, 507) == "not enough disk space available"
    assert not list(tiny.iterdir())  # the tmpfs is private to the agent: the host sees none
    small = post(agent, params={"path": str(tiny.parent / "fine")}, content=b"ok", headers=OCTET)
    assert small.status_code == 200


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_gzip_bomb_is_written_piece_by_piece(
    agent_factory: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    agent = agent_factory()
    before = _peak_rss_mib(agent.process.pid)
    size = 256 << 20
    bomb = gzip.compress(b"\0" * size, compresslevel=9)
    assert len(bomb) < size // 500
    target = tmp_path / "bomb"
    response = post(
        agent,
        params={"path": str(target)},
        content=bomb,
        headers={**OCTET, "content-encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert target.stat().st_size == size
    target.unlink()
    assert _peak_rss_mib(agent.process.pid) - before < 32


def test_json_answer_lists_files_in_request_order(agent: AgentProcess, tmp_path: Path) -> None:
    names = [f"f{n}" for n in range(5, 0, -1)]
    files = [("file", (str(tmp_path / name), name.encode())) for name in names]
    response = post(agent, files=files, headers=TOKEN)
    assert [entry["name"] for entry in json.loads(response.content)] == names
