"""`sbx.files.write` / `read` (envd `/files`) through the official `e2b` SDK, sync and async.

Covers every body form the SDK sends (multipart single and multi-file, octet-stream for
file-like data, gzip, `use_octet_stream`), metadata, `user=`, the error mapping of protocol
doc §7.2-7.4, the event sequence of a new file, path escapes (`..`, symlinks) that must
stay inside the sandbox, and the memory of server and agent during a 1 GiB transfer.
"""

from __future__ import annotations

import asyncio
import io
import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2b import (
    AsyncSandbox,
    AuthenticationException,
    FileNotFoundException,
    InvalidArgumentException,
)
from e2b.sandbox.filesystem.filesystem import WriteEntry

from file_transfer import agent_pid, stream_through  # bench/, on sys.path through conftest

pytestmark = pytest.mark.usefixtures("corral_server")

MIB = 1024 * 1024


def stat_of(sbx: Any, path: str) -> str:
    """`owner:group mode` of a sandbox path, read inside the sandbox."""
    return str(sbx.commands.run(f"stat -c '%U:%G %a' '{path}'", user="root").stdout.strip())


def sandbox_sha256(sbx: Any, path: str) -> str:
    return str(sbx.commands.run(f"sha256sum '{path}'").stdout.split()[0])


# --- sync: every body form ---------------------------------------------------------------


def test_write_str_then_read_text(shared_sandbox: Any) -> None:
    info = shared_sandbox.files.write("/home/user/hello.txt", "héllo\nworld")
    assert info.path == "/home/user/hello.txt" and info.name == "hello.txt"
    assert shared_sandbox.files.read("/home/user/hello.txt") == "héllo\nworld"
    assert stat_of(shared_sandbox, "/home/user/hello.txt") == "user:user 644"


def test_relative_path_creates_parents_owned_by_the_user(shared_sandbox: Any) -> None:
    data = bytes(range(256)) * 10
    info = shared_sandbox.files.write("deep/er/file.bin", data)
    assert info.path == "/home/user/deep/er/file.bin"
    assert shared_sandbox.files.read("deep/er/file.bin", format="bytes") == bytearray(data)
    assert stat_of(shared_sandbox, "/home/user/deep") == "user:user 755"
    assert stat_of(shared_sandbox, "/home/user/deep/er") == "user:user 755"
    assert stat_of(shared_sandbox, "/home/user/deep/er/file.bin") == "user:user 644"
    assert shared_sandbox.files.read("~/deep/er/file.bin", format="bytes") == bytearray(data)


def test_file_like_goes_as_octet_stream_and_reads_back_as_a_stream(shared_sandbox: Any) -> None:
    data = os.urandom(3 * MIB + 17)
    shared_sandbox.files.write("/tmp/filelike.bin", io.BytesIO(data))
    reader = shared_sandbox.files.read("/tmp/filelike.bin", format="stream")
    try:
        received = b"".join(reader)
    finally:
        reader.close()
    assert received == data


def test_write_files_sends_several_files_in_one_multipart_body(shared_sandbox: Any) -> None:
    infos = shared_sandbox.files.write_files(
        [
            WriteEntry(path="multi/a.txt", data="A"),
            WriteEntry(path="/tmp/multi/b.bin", data=b"\x00B"),
            WriteEntry(path="/tmp/multi/c.txt", data=io.BytesIO(b"C" * 1000)),
        ],
        use_octet_stream=False,
    )
    assert [i.path for i in infos] == [
        "/home/user/multi/a.txt",
        "/tmp/multi/b.bin",
        "/tmp/multi/c.txt",
    ]
    assert shared_sandbox.files.read("multi/a.txt") == "A"
    assert shared_sandbox.files.read("/tmp/multi/b.bin", format="bytes") == bytearray(b"\x00B")
    assert shared_sandbox.files.read("/tmp/multi/c.txt") == "C" * 1000


def test_write_files_to_the_same_path_twice_is_invalid(shared_sandbox: Any) -> None:
    with pytest.raises(InvalidArgumentException, match="twice"):
        shared_sandbox.files.write_files(
            [WriteEntry(path="/tmp/twice", data="1"), WriteEntry(path="/tmp/twice", data="2")]
        )


def test_gzip_both_directions(shared_sandbox: Any) -> None:
    data = b"compressible " * 200_000
    shared_sandbox.files.write("/tmp/gz.bin", data, gzip=True)
    assert sandbox_sha256(shared_sandbox, "/tmp/gz.bin") == _sha256(data)
    assert shared_sandbox.files.read("/tmp/gz.bin", format="bytes", gzip=True) == bytearray(data)
    # streamed + gzip: an iterable of chunks, compressed by the SDK as it goes
    shared_sandbox.files.write("/tmp/gz2.bin", iter([b"x" * MIB] * 5), gzip=True)
    assert shared_sandbox.files.read("/tmp/gz2.bin", format="bytes") == bytearray(b"x" * 5 * MIB)


def test_use_octet_stream_for_bytes(shared_sandbox: Any) -> None:
    shared_sandbox.files.write("/tmp/octet.txt", b"octet", use_octet_stream=True)
    assert shared_sandbox.files.read("/tmp/octet.txt") == "octet"


def test_overwrite_truncates(shared_sandbox: Any) -> None:
    shared_sandbox.files.write("/tmp/over.txt", "a long first version")
    shared_sandbox.files.write("/tmp/over.txt", "short")
    assert shared_sandbox.files.read("/tmp/over.txt") == "short"


def test_empty_file(shared_sandbox: Any) -> None:
    shared_sandbox.files.write("/tmp/empty", b"")
    assert shared_sandbox.files.read("/tmp/empty", format="bytes") == bytearray()


def test_metadata_is_stored_as_xattrs_and_replaced_by_the_next_upload(shared_sandbox: Any) -> None:
    info = shared_sandbox.files.write("/tmp/meta.txt", "m", metadata={"Owner": "me", "k2": "v 2"})
    assert info.metadata == {"owner": "me", "k2": "v 2"}
    dump = shared_sandbox.commands.run("getfattr -d /tmp/meta.txt", user="root").stdout
    assert 'user.e2b.owner="me"' in dump and 'user.e2b.k2="v 2"' in dump
    shared_sandbox.files.write("/tmp/meta.txt", "m2", metadata={"only": "this"})
    dump = shared_sandbox.commands.run("getfattr -d /tmp/meta.txt", user="root").stdout
    assert 'user.e2b.only="this"' in dump and "owner" not in dump
    shared_sandbox.files.write("/tmp/meta.txt", "m3")
    dump = shared_sandbox.commands.run("getfattr -d /tmp/meta.txt", user="root").stdout
    assert "user.e2b" not in dump


def test_user_root_owns_its_files_and_resolves_relative_paths_in_its_home(
    shared_sandbox: Any,
) -> None:
    info = shared_sandbox.files.write("as-root/r.txt", "r", user="root")
    assert info.path == "/root/as-root/r.txt"
    assert stat_of(shared_sandbox, "/root/as-root/r.txt") == "root:root 644"
    assert stat_of(shared_sandbox, "/root/as-root") == "root:root 755"
    assert shared_sandbox.files.read("as-root/r.txt", user="root") == "r"


def test_unknown_user_is_an_authentication_error(shared_sandbox: Any) -> None:
    with pytest.raises(AuthenticationException):
        shared_sandbox.files.write("/tmp/x", "x", user="no-such-user")


def test_missing_file_and_directory_errors(shared_sandbox: Any) -> None:
    with pytest.raises(FileNotFoundException, match="does not exist"):
        shared_sandbox.files.read("/home/user/no/such/file")
    with pytest.raises(InvalidArgumentException, match="is a directory"):
        shared_sandbox.files.read("/home/user")
    with pytest.raises(InvalidArgumentException, match="is a directory"):
        shared_sandbox.files.write("/tmp", "x")
    shared_sandbox.files.write("/tmp/plain", "x")
    with pytest.raises(InvalidArgumentException, match="not a directory"):
        shared_sandbox.files.write("/tmp/plain/child", "x")


def test_a_new_file_makes_exactly_create_chmod_write(sandbox: Any) -> None:
    from e2b import FilesystemEventType

    sandbox.files.make_dir("/home/user/watched")
    handle = sandbox.files.watch_dir("/home/user/watched")
    try:
        sandbox.files.write("/home/user/watched/new.txt", "content")
        deadline = time.monotonic() + 10
        events: list[Any] = []
        while time.monotonic() < deadline and len(events) < 3:
            events += handle.get_new_events()
            time.sleep(0.05)
        time.sleep(0.3)
        events += handle.get_new_events()
    finally:
        handle.stop()
    assert [(e.name, e.type) for e in events] == [
        ("new.txt", FilesystemEventType.CREATE),
        ("new.txt", FilesystemEventType.CHMOD),
        ("new.txt", FilesystemEventType.WRITE),
    ]


# --- signed URLs, used by a plain HTTP client ---------------------------------------------


def test_download_and_upload_urls_work_without_sdk_headers(shared_sandbox: Any) -> None:
    shared_sandbox.files.write("/home/user/signed.txt", "signed content")
    url = shared_sandbox.download_url("/home/user/signed.txt")
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text
    assert response.text == "signed content"
    assert response.headers["content-disposition"] == 'inline; filename="signed.txt"'

    upload = shared_sandbox.upload_url("/home/user/up/via-url.txt")
    response = httpx.post(upload, files={"file": ("whatever", b"uploaded")}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()[0]["path"] == "/home/user/up/via-url.txt"
    assert shared_sandbox.files.read("/home/user/up/via-url.txt") == "uploaded"
    assert stat_of(shared_sandbox, "/home/user/up/via-url.txt") == "user:user 644"

    as_root = shared_sandbox.upload_url("rootfile", user="root", use_signature_expiration=60)
    response = httpx.post(
        as_root, content=b"r", headers={"content-type": "application/octet-stream"}, timeout=30
    )
    assert response.status_code == 200, response.text
    assert stat_of(shared_sandbox, "/root/rootfile") == "root:root 644"
    timed = shared_sandbox.download_url("/root/rootfile", user="root", use_signature_expiration=60)
    assert httpx.get(timed, timeout=30).content == b"r"


def test_expired_and_forged_signatures_are_401(shared_sandbox: Any) -> None:
    shared_sandbox.files.write("/tmp/exp.txt", "e")
    url = shared_sandbox.download_url("/tmp/exp.txt", use_signature_expiration=1)
    time.sleep(2.1)  # the expiry is in whole seconds
    response = httpx.get(url, timeout=30)
    assert response.status_code == 401
    assert response.json() == {"code": 401, "message": "signature is already expired"}

    good = shared_sandbox.download_url("/tmp/exp.txt")
    for forged in (
        good.replace("exp.txt", "other.txt"),  # signature of another path
        good.replace("signature=v1_", "signature=v1_A"),
        good.replace("%2Ftmp%2Fexp.txt", "%2Ftmp%2Fexp.txt&username=root"),
    ):
        response = httpx.get(forged, timeout=30)
        assert response.status_code == 401, forged
        assert response.json() == {"code": 401, "message": "invalid signature"}
    # an upload link cannot be used to read, nor a download link to write
    upload = shared_sandbox.upload_url("/tmp/exp.txt")
    assert httpx.get(upload, timeout=30).json()["message"] == "invalid signature"
    response = httpx.post(good, files={"file": ("f", b"x")}, timeout=30)
    assert response.json()["message"] == "invalid signature"
    assert shared_sandbox.files.read("/tmp/exp.txt") == "e"


def test_data_plane_without_token_or_signature_is_401(shared_sandbox: Any, server_url: str) -> None:
    headers = {"E2b-Sandbox-Id": shared_sandbox.sandbox_id, "E2b-Sandbox-Port": "49983"}
    params = {"path": "/etc/hostname"}
    response = httpx.get(f"{server_url}/files", params=params, headers=headers, timeout=30)
    assert response.status_code == 401
    assert response.json() == {"code": 401, "message": "missing signature query parameter"}
    headers["X-Access-Token"] = "wrong"
    response = httpx.get(f"{server_url}/files", params=params, headers=headers, timeout=30)
    assert response.status_code == 401


# --- the sandbox boundary ---------------------------------------------------------------------


@pytest.mark.requires_isolation
def test_symlinks_and_dotdot_only_reach_the_sandbox(shared_sandbox: Any) -> None:
    marker = f"corral-h2-escape-{uuid.uuid4().hex}"
    sandbox_shadow = shared_sandbox.commands.run("cat /etc/shadow", user="root").stdout
    host_shadow = Path("/etc/shadow").read_text()
    assert sandbox_shadow != host_shadow  # else the check below proves nothing
    shared_sandbox.commands.run("ln -sf /etc/shadow /home/user/shadow-link")
    assert shared_sandbox.files.read("/home/user/shadow-link", user="root") == sandbox_shadow
    assert shared_sandbox.files.read("../../../../../../etc/shadow") == sandbox_shadow
    hostname = shared_sandbox.commands.run("cat /etc/hostname").stdout
    assert shared_sandbox.files.read("/../../etc/hostname") == hostname

    # writes through `..` in the path, in a multipart filename and through a symlink
    shared_sandbox.files.write(f"../../../../../tmp/{marker}-1", "1")
    shared_sandbox.files.write_files(
        [WriteEntry(path=f"../../../../../../tmp/{marker}-2", data="2")], use_octet_stream=False
    )
    shared_sandbox.commands.run(f"ln -sf /tmp/{marker}-3 /home/user/out-link")
    shared_sandbox.files.write("/home/user/out-link", "3")
    for n in (1, 2, 3):
        assert shared_sandbox.files.read(f"/tmp/{marker}-{n}") == str(n)
        assert not Path(f"/tmp/{marker}-{n}").exists()
    url = shared_sandbox.upload_url(f"/../../tmp/{marker}-4")
    response = httpx.post(url, files={"file": ("x", b"4")}, timeout=30)
    assert response.status_code == 200, response.text
    assert not Path(f"/tmp/{marker}-4").exists()
    assert shared_sandbox.files.read(f"/tmp/{marker}-4") == "4"


@pytest.mark.requires_isolation
def test_device_and_fifo_targets_are_refused(shared_sandbox: Any) -> None:
    with pytest.raises(InvalidArgumentException, match="not a regular file"):
        shared_sandbox.files.write("/dev/null", "x")
    with pytest.raises(InvalidArgumentException, match="not a regular file"):
        shared_sandbox.files.read("/dev/zero")
    shared_sandbox.commands.run("mkfifo /tmp/fifo")
    with pytest.raises(InvalidArgumentException, match="not a regular file"):
        shared_sandbox.files.read("/tmp/fifo")  # would block forever if opened blocking
    assert shared_sandbox.commands.run("echo still alive").stdout == "still alive\n"


# --- memory stays flat ------------------------------------------------------------------


def test_a_1_gib_transfer_keeps_server_and_agent_memory_flat(
    sandbox: Any, corral_server: Any
) -> None:
    pids = [corral_server.process.pid, agent_pid(corral_server, sandbox.sandbox_id)]
    size = 1024 * MIB
    transfer = stream_through(sandbox, "/tmp/big.bin", size, pids)
    assert transfer.uploaded == size
    assert transfer.received == size
    up, down = transfer.upload_rss, transfer.download_rss
    for pid in pids:
        for base, peak in (up[pid], down[pid]):
            assert peak - base < 64, (up, down)


# --- async ------------------------------------------------------------------------------------


async def test_async_sdk_every_form() -> None:
    sbx = await AsyncSandbox.create(timeout=120)
    try:
        info = await sbx.files.write("async/a.txt", "async text")
        assert info.path == "/home/user/async/a.txt"
        assert await sbx.files.read("async/a.txt") == "async text"
        await sbx.files.write("/tmp/b.bin", b"\x01\x02", metadata={"Kind": "bin"})
        assert await sbx.files.read("/tmp/b.bin", format="bytes") == bytearray(b"\x01\x02")
        data = os.urandom(2 * MIB)
        await sbx.files.write("/tmp/c.bin", io.BytesIO(data))
        stream = await sbx.files.read("/tmp/c.bin", format="stream")
        assert b"".join([piece async for piece in stream]) == data
        infos = await sbx.files.write_files(
            [WriteEntry(path="/tmp/m1", data="1"), WriteEntry(path="m2", data=b"2")]
        )
        assert [i.path for i in infos] == ["/tmp/m1", "/home/user/m2"]
        await sbx.files.write("/tmp/gz", b"g" * 100_000, gzip=True)
        assert await sbx.files.read("/tmp/gz", gzip=True) == "g" * 100_000
        await sbx.files.write("/tmp/r", "r", user="root")
        assert (await sbx.commands.run("stat -c %U /tmp/r")).stdout.strip() == "root"
        with pytest.raises(FileNotFoundException):
            await sbx.files.read("/tmp/none")
        with pytest.raises(InvalidArgumentException):
            await sbx.files.read("/tmp")
        async with httpx.AsyncClient(timeout=30) as client:
            url = sbx.download_url("/tmp/m1", use_signature_expiration=30)
            assert (await client.get(url)).text == "1"
            url = sbx.upload_url("/tmp/m3")
            response = await client.post(url, files={"file": ("x", b"3")})
            assert response.status_code == 200, response.text
        assert await sbx.files.read("/tmp/m3") == "3"
    finally:
        await sbx.kill()


async def test_async_uploads_run_concurrently() -> None:
    sbx = await AsyncSandbox.create(timeout=120)
    try:
        payloads = {f"/tmp/conc/{n}.bin": os.urandom(256 * 1024 + n) for n in range(8)}
        await asyncio.gather(*(sbx.files.write(p, d) for p, d in payloads.items()))
        reads = await asyncio.gather(*(sbx.files.read(p, format="bytes") for p in payloads))
        assert [bytes(r) for r in reads] == list(payloads.values())
    finally:
        await sbx.kill()


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
