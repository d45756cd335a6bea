"""Isolation, probed from inside with real attempts that must fail.

Every test here runs against the real isolation backend (`requires_isolation`). Some probes
are destructive if isolation is absent (as sandbox root they append to /etc/passwd, replace
python3, mount tmpfs, mknod): `assert_isolated` first checks that the sandbox cannot see a
canary directory made on the host, and aborts the whole run (`pytest.exit`) if it can.
Never remove that guard or run this module against the `fake` runtime. Each probe has a
positive control where one makes sense, so a broken probe cannot pass by accident.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shlex
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2b import CommandResult, Sandbox

pytestmark = [pytest.mark.requires_isolation, pytest.mark.usefixtures("corral_server")]

LAYERS_DIR = Path("/var/lib/corral/templates/layers")
PROC_SCAN = r"for p in /proc/[0-9]*; do tr '\0' ' ' < $p/cmdline 2>/dev/null; echo; done"


def unique() -> str:
    return f"{random.randint(100, 999)}.{random.randint(100000, 999999)}"


def syscall_probe(sbx: Any, code: str, user: str = "root") -> int:
    """Run a python3 snippet that prints `<return value> <errno>`; returns the errno,
    asserting that the call failed."""
    prelude = "import ctypes, os, stat; libc = ctypes.CDLL(None, use_errno=True); "
    result = run_any(sbx, f"python3 -c {shlex.quote(prelude + code)}", user=user)
    fields = result.stdout.split()
    assert len(fields) == 2, (result.stdout, result.stderr)
    assert fields[0] == "-1", f"the call succeeded: {result.stdout}"
    return int(fields[1])


def run_any(sbx: Any, cmd: str, user: str | None = None) -> CommandResult:
    """Run `cmd` and return its result whatever the exit code."""
    handle = sbx.commands.run(cmd, background=True, user=user, timeout=30)
    try:
        return handle.wait()  # type: ignore[no-any-return]
    except Exception as exc:  # CommandExitException is itself a CommandResult
        if isinstance(exc, CommandResult):
            return exc
        raise


def host_pids_with_cmdline(needle: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if needle.encode() in cmdline:
            pids.append(int(entry))
    return pids


def assert_isolated(sbx: Any, canary: Path) -> None:
    """Stop the whole run before any destructive probe if `sbx` can see host files: the
    probes below write /etc/passwd, python3, mounts and device nodes as sandbox root."""
    for user in ("root", "user"):
        seen = run_any(sbx, f"test -e {canary} && echo VISIBLE || echo hidden", user=user)
        if seen.stdout != "hidden\n":
            pytest.exit(
                f"sandbox {sbx.sandbox_id} sees the host file {canary} as {user} "
                f"({seen.stdout!r} {seen.stderr!r}): refusing to run destructive isolation probes",
                returncode=3,
            )


@pytest.fixture(scope="module")
def pair(corral_server: Any, host_canary: Path) -> Iterator[tuple[Any, Any]]:
    a = Sandbox.create(timeout=300)
    b = Sandbox.create(timeout=300)
    try:
        assert_isolated(a, host_canary)
        assert_isolated(b, host_canary)
        yield a, b
    finally:
        for sbx in (a, b):
            with contextlib.suppress(Exception):
                sbx.kill()


# --- one sandbox cannot see another ---------------------------------------------------------


def test_processes_of_another_sandbox_are_invisible(pair: tuple[Any, Any]) -> None:
    a, b = pair
    marker = f"sleep {unique()}"
    handle = b.commands.run(marker, background=True, timeout=60)
    try:
        assert any(marker in line for line in b.commands.run(PROC_SCAN).stdout.splitlines())
        assert not any(marker in line for line in a.commands.run(PROC_SCAN).stdout.splitlines())
        ps = run_any(a, "command -v ps >/dev/null && ps aux || echo no-ps")
        assert marker not in ps.stdout
        # the host does see it (positive control for the probe)
        assert host_pids_with_cmdline(marker)
    finally:
        handle.kill()


def test_proc_holds_only_the_sandbox_own_pids(pair: tuple[Any, Any]) -> None:
    a, _ = pair
    pids = [int(p) for p in a.commands.run("ls /proc | grep -E '^[0-9]+$'").stdout.split()]
    host_pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    assert 1 in pids
    assert len(pids) < 30, f"sandbox sees {len(pids)} processes: {pids}"
    assert len(pids) < len(host_pids)
    init = a.commands.run("tr '\\0' ' ' < /proc/1/cmdline").stdout
    assert "corral" in init.lower() or "agent" in init.lower() or "envd" in init.lower(), init
    assert "systemd" not in init and "/sbin/init" not in init


def test_files_of_another_sandbox_are_invisible(pair: tuple[Any, Any]) -> None:
    a, b = pair
    name = f"isolation-{unique()}"
    a.commands.run(f"echo secret > /tmp/{name}; echo secret > /home/user/{name}")
    assert a.commands.run(f"cat /tmp/{name}").stdout == "secret\n"  # positive control
    assert run_any(b, f"test -e /tmp/{name}").exit_code == 1
    assert run_any(b, f"test -e /home/user/{name}").exit_code == 1
    assert not Path(f"/tmp/{name}").exists()


def test_host_filesystem_is_not_visible(pair: tuple[Any, Any], corral_server: Any) -> None:
    a, _ = pair
    assert Path("/work/main/pyproject.toml").exists()  # positive control on the host
    assert run_any(a, "test -e /work/main/pyproject.toml", user="root").exit_code == 1
    assert run_any(a, f"test -e {corral_server.state_dir}", user="root").exit_code == 1
    assert run_any(a, f"test -e {corral_server.run_dir}", user="root").exit_code == 1
    assert run_any(a, f"test -e {corral_server.log_path}", user="root").exit_code == 1


# --- template files are copy-on-write -------------------------------------------------------


def _layer_fingerprints() -> dict[str, str]:
    """sha256 of /etc/passwd and every python3 binary in every template layer on disk."""
    prints: dict[str, str] = {}
    for layer in sorted(LAYERS_DIR.glob("*")):
        candidates = [layer / "etc" / "passwd", *layer.glob("usr/bin/python3*")]
        for path in candidates:
            if path.is_file() and not path.is_symlink():
                prints[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return prints


def test_root_writes_to_template_files_are_copy_up_only(
    corral_server: Any, host_canary: Path
) -> None:
    before_layers = _layer_fingerprints()
    assert before_layers, f"no template layers found under {LAYERS_DIR}"
    writer = Sandbox.create(timeout=120)
    witness = Sandbox.create(timeout=120)
    try:
        assert_isolated(writer, host_canary)
        hash_cmd = "sha256sum /etc/passwd $(readlink -f /usr/bin/python3)"
        before_witness = witness.commands.run(hash_cmd).stdout
        result = run_any(
            writer,
            "echo 'evil:x:0:0::/root:/bin/bash' >> /etc/passwd && "
            "cp /bin/true $(readlink -f /usr/bin/python3) && echo wrote",
            user="root",
        )
        assert result.stdout == "wrote\n", result.stderr  # root may change its own copy
        assert "evil:" in writer.commands.run("cat /etc/passwd").stdout
        assert witness.commands.run(hash_cmd).stdout == before_witness
        assert "evil:" not in witness.commands.run("cat /etc/passwd").stdout
        assert witness.commands.run("python3 -c 'print(6*7)'").stdout == "42\n"
        assert _layer_fingerprints() == before_layers
        assert "evil:" not in Path("/etc/passwd").read_text()
    finally:
        writer.kill()
        witness.kill()


# --- sandbox root cannot reach the host -----------------------------------------------------


def test_proc_1_root_does_not_lead_to_the_host(pair: tuple[Any, Any]) -> None:
    a, _ = pair
    name = f"corral-escape-{unique()}"
    run_any(a, f"echo x > /proc/1/root/tmp/{name}; echo x > /proc/1/root/etc/{name}", user="root")
    assert not Path(f"/tmp/{name}").exists()
    assert not Path(f"/etc/{name}").exists()


def test_mount_fails(pair: tuple[Any, Any]) -> None:
    a, _ = pair
    name = f"mnt-{unique()}"
    a.commands.run(f"mkdir -p /tmp/{name}", user="root")
    assert run_any(a, f"mount -t tmpfs none /tmp/{name}", user="root").exit_code != 0
    assert run_any(a, f"mount --bind / /tmp/{name}", user="root").exit_code != 0
    errno_ = syscall_probe(
        a,
        f"r = libc.mount(b'none', b'/tmp/{name}', b'tmpfs', 0, None); print(r, ctypes.get_errno())",
    )
    assert errno_ in (1, 13, 38)  # EPERM, EACCES or ENOSYS (seccomp)
    assert "tmpfs" not in a.commands.run(f"grep ' /tmp/{name} ' /proc/self/mounts || true").stdout


def test_new_user_namespace_fails(pair: tuple[Any, Any]) -> None:
    a, _ = pair
    for user in ("root", "user"):
        result = run_any(a, "unshare -Ur id -u", user=user)
        assert result.exit_code != 0, (user, result.stdout)
    result = run_any(a, "unshare --fork --pid --mount true", user="root")
    assert result.exit_code != 0
    for flags in (0x10000000, 0x20000000 | 0x00020000):  # CLONE_NEWUSER; NEWPID|NEWNS
        for user in ("root", "user"):
            errno_ = syscall_probe(
                a, f"r = libc.unshare({flags}); print(r, ctypes.get_errno())", user=user
            )
            assert errno_ in (1, 22, 28, 38)  # EPERM, EINVAL, ENOSPC, ENOSYS


def test_sysfs_is_not_writable(pair: tuple[Any, Any]) -> None:
    a, _ = pair
    # Re-writing the current value is harmless even if it were allowed.
    result = run_any(
        a,
        "f=/sys/module/printk/parameters/time; v=$(cat $f 2>/dev/null) || exit 7; "
        "echo $v > $f && echo wrote",
        user="root",
    )
    assert "wrote" not in result.stdout
    assert run_any(a, "touch /sys/corral-probe", user="root").exit_code != 0
    assert run_any(a, "echo 1 > /proc/sys/vm/drop_caches", user="root").exit_code != 0


def test_mknod_fails(pair: tuple[Any, Any]) -> None:
    a, _ = pair
    name = unique()
    assert run_any(a, f"mknod /tmp/blk-{name} b 8 0", user="root").exit_code != 0
    assert run_any(a, f"mknod /tmp/mem-{name} c 1 1", user="root").exit_code != 0
    errno_ = syscall_probe(
        a,
        f"r = libc.mknod(b'/tmp/py-{name}', stat.S_IFCHR | 0o600, os.makedev(1, 1)); "
        "print(r, ctypes.get_errno())",
    )
    assert errno_ in (1, 38)  # EPERM or ENOSYS


def test_vsock_to_the_hypervisor_is_denied(pair: tuple[Any, Any]) -> None:
    a, _ = pair
    # AF_VSOCK (40) is not network-namespaced: on a VM host it reaches the hypervisor.
    assert syscall_probe(a, "r = libc.socket(40, 1, 0); print(r, ctypes.get_errno())") == 1
    # positive control: an ordinary socket family still works
    assert run_any(a, "python3 -c 'import socket; socket.socket()'", user="root").exit_code == 0


def test_io_uring_is_denied(pair: tuple[Any, Any]) -> None:
    a, _ = pair
    errno_ = syscall_probe(
        a,
        "p = ctypes.create_string_buffer(120); r = libc.syscall(425, 1, p); "
        "print(r, ctypes.get_errno())",
    )
    assert errno_ == 1  # EPERM from the filter (an allowed call would return an fd)


def test_loading_kernel_modules_fails(pair: tuple[Any, Any]) -> None:
    a, _ = pair
    # finit_module(2) on an empty file: ENOEXEC would mean the call was allowed.
    errno_ = syscall_probe(
        a,
        "fd = os.open('/dev/null', os.O_RDONLY); r = libc.syscall(313, fd, b'', 0); "
        "print(r, ctypes.get_errno())",
    )
    assert errno_ in (1, 38)  # EPERM or ENOSYS
    errno_ = syscall_probe(  # init_module(2) with an empty image
        a, "r = libc.syscall(175, b'', 0, b''); print(r, ctypes.get_errno())"
    )
    assert errno_ in (1, 38)


def test_only_loopback_and_the_gateway_veth(pair: tuple[Any, Any], corral_server: Any) -> None:
    a, _ = pair
    interfaces = a.commands.run("tail -n +3 /proc/net/dev | cut -d: -f1").stdout
    # `eth0`: the veth to the server's gateway namespace (corral.network.gateway)
    assert sorted(interfaces.split()) == ["eth0", "lo"], interfaces
    # positive control: the host has more than loopback
    assert len(Path("/proc/net/dev").read_text().splitlines()[2:]) > 1
    # The server listens on the host's 127.0.0.1: the sandbox's loopback is its own.
    probe = run_any(
        a,
        'python3 -c "import socket; s=socket.socket(); s.settimeout(2); '
        f"print(s.connect_ex(('127.0.0.1', {corral_server.port})))\"",
    )
    assert probe.stdout.strip() not in ("", "0"), probe.stdout + probe.stderr


def test_hostname_differs_from_the_host(pair: tuple[Any, Any]) -> None:
    a, _ = pair
    inside = a.commands.run("cat /proc/sys/kernel/hostname").stdout.strip()
    assert inside and inside != socket.gethostname()


def test_sandbox_processes_are_not_host_root(pair: tuple[Any, Any]) -> None:
    a, _ = pair
    for user in ("root", "user"):
        marker = f"sleep {unique()}"
        handle = a.commands.run(marker, background=True, user=user, timeout=60)
        try:
            deadline = time.monotonic() + 5
            pids: list[int] = []
            while not pids and time.monotonic() < deadline:
                pids = host_pids_with_cmdline(marker)
                time.sleep(0.05)
            assert pids, f"{marker} not found from the host"
            checked = 0
            for pid in pids:
                try:  # `bash -l` forks short-lived subshells that carry the marker too
                    status = Path(f"/proc/{pid}/status").read_text()
                except FileNotFoundError:
                    continue
                checked += 1
                uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
                uids = [int(value) for value in uid_line.split()[1:]]
                assert all(uid != 0 for uid in uids), (user, uid_line)
                nspid = next(line for line in status.splitlines() if line.startswith("NSpid:"))
                assert len(nspid.split()) >= 3, f"not in a pid namespace: {nspid}"
            assert checked, f"every process of {marker} vanished before it was checked"
        finally:
            handle.kill()
