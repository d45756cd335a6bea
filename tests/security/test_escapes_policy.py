"""The seccomp policy: documented, reviewed against known escapes, and enforced as written.

* `THREAT_MODEL.md` holds the policy as a table rendered from `corral.runtime._linux.seccomp`;
  the table must match the data (the failure message prints the table to paste).
* Every syscall of the escape review (the list below) is denied.
* Enforcement is checked on the host, outside any sandbox, so that the kernel itself never
  answers EPERM for lack of privilege: a child process running as host root (every
  capability) loads the compiled filter and calls each denied syscall with every argument
  -1, which the kernel rejects harmlessly (EFAULT, EBADF, EINVAL, ...) whenever the call
  gets through. A control child without the filter proves that the kernel's answer differs
  from the filter's, so a missing rule cannot pass unnoticed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from corral.runtime._linux import seccomp, syscalls

REPO = Path(__file__).resolve().parent.parent.parent
THREAT_MODEL = REPO / "THREAT_MODEL.md"

# The escape review (issue 4): syscalls container escapes and kernel exploits have used.
REVIEWED = (  # noqa: SIM905
    "open_by_handle_at name_to_handle_at keyctl add_key request_key bpf perf_event_open "
    "userfaultfd kexec_load kexec_file_load init_module finit_module delete_module ptrace "
    "process_vm_readv process_vm_writev pidfd_getfd personality mount umount2 pivot_root "
    "move_mount fsopen fsconfig fsmount fspick open_tree mount_setattr unshare setns clone3 "
    "io_uring_setup io_uring_enter io_uring_register swapon swapoff reboot settimeofday "
    "clock_settime clock_adjtime adjtimex acct quotactl quotactl_fd lookup_dcookie iopl ioperm "
    "vm86 vm86old nfsservctl uselib sysfs ustat _sysctl syslog kcmp"
).split()

_ERRNO_NAMES = {1: "EPERM", 38: "ENOSYS"}
_CLONE_FLAG_NAMES = {
    getattr(syscalls, name): name for name in syscalls.__all__ if name.startswith("CLONE_NEW")
}


def render_policy_table() -> str:
    """The seccomp section of THREAT_MODEL.md, rendered from the policy data."""
    lines = ["| denied | answer | why |", "|---|---|---|"]
    for denial in seccomp.DENIED:
        lines.append(f"| `{denial.syscall}` | {_ERRNO_NAMES[denial.errno]} | {denial.reason} |")
    for flag in seccomp.DENIED_CLONE_FLAGS:
        lines.append(f"| `clone` with `{_CLONE_FLAG_NAMES[flag]}` | EPERM | as `unshare` |")
    allowed = ", ".join(f"`{family.name}`" for family in seccomp.ALLOWED_SOCKET_FAMILIES)
    lines.append(
        f"| `socket`, `socketpair` of any family but {allowed} | EPERM | "
        f"{seccomp.SOCKET_FAMILY_REASON} |"
    )
    for ioctl in seccomp.DENIED_IOCTLS:
        lines.append(f"| `ioctl` `{ioctl.name}` | EPERM | {ioctl.reason} |")
    lines.append("| any syscall of another architecture (i386, x32) | kill | libseccomp default |")
    return "\n".join(lines) + "\n"


def test_threat_model_table_matches_the_policy() -> None:
    table = render_policy_table()
    assert table in THREAT_MODEL.read_text(), (
        "THREAT_MODEL.md's seccomp table differs from the policy data; paste this:\n\n" + table
    )


def test_every_reviewed_escape_syscall_is_denied() -> None:
    denied = {denial.syscall for denial in seccomp.DENIED}
    assert sorted(set(REVIEWED) - denied) == []
    assert len(denied) == len(seccomp.DENIED), "a syscall is listed twice"
    for denial in seccomp.DENIED:
        assert denial.reason and denial.errno in _ERRNO_NAMES


_PROBE = r"""
import ctypes, json, os, sys
import pyseccomp
from corral.runtime._linux import seccomp, syscalls

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
os.setsid()  # no controlling terminal: vhangup() has nothing to hang up
if sys.argv[1] == "filtered":
    syscalls.set_seccomp_filter(seccomp.compile_filter())
arch = pyseccomp.system_arch()
nr = lambda name: pyseccomp.resolve_syscall(arch, name)
L = ctypes.c_long
M1 = L(-1)

def call(number, *args):
    r = libc.syscall(L(number), *[L(a) for a in args])
    err = ctypes.get_errno()
    if r >= 0 and number in (nr("socket"), nr("socketpair")) and args[3:] == ():
        os.close(r)
    return err if r == -1 else "ok"

out = {"syscalls": {}, "socket": {}, "ioctl": {}, "clone": {}}
for d in seccomp.DENIED:
    number = nr(d.syscall)
    out["syscalls"][d.syscall] = None if number < 0 else call(number, -1, -1, -1, -1, -1, -1)
families = list(range(seccomp.SOCKET_FAMILY_LIMIT)) + [0x1_0000_0028, 0x1_0000_0002, 1 << 40]
for family in families:
    out["socket"][str(family)] = call(nr("socket"), family, 2, 0)  # SOCK_DGRAM
pair = (ctypes.c_int * 2)()
out["socketpair_vsock"] = libc.socketpair(40, 1, 0, pair) == -1 and ctypes.get_errno()
for ioctl in seccomp.DENIED_IOCTLS:
    for request in (ioctl.request, ioctl.request | 0x1_0000_0000):
        out["ioctl"][str(request)] = call(nr("ioctl"), -1, request, 0)
CLONE_THREAD = 0x10000  # without CLONE_SIGHAND: the kernel answers EINVAL, nothing is made
for flag in seccomp.DENIED_CLONE_FLAGS:
    out["clone"][str(flag)] = call(nr("clone"), flag | CLONE_THREAD, 0, 0, 0, 0)
print(json.dumps(out))
"""


def _probe(mode: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, mode],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


@pytest.fixture(scope="module")
def probes() -> tuple[dict[str, Any], dict[str, Any]]:
    if os.geteuid() != 0:
        pytest.skip("loading the filter without no_new_privs needs root")
    return _probe("filtered"), _probe("plain")


def test_every_denied_syscall_gets_its_errno(probes: tuple[dict[str, Any], ...]) -> None:
    filtered, plain = probes
    checked = 0
    for denial in seccomp.DENIED:
        got = filtered["syscalls"][denial.syscall]
        if got is None:  # not a syscall of this architecture (vm86 on x86_64)
            continue
        checked += 1
        assert got == denial.errno, f"{denial.syscall}: {got}"
        # control: without the filter the kernel answers differently (or the call works)
        assert plain["syscalls"][denial.syscall] != denial.errno, denial.syscall
    assert checked >= len(seccomp.DENIED) - 2


def test_only_allowed_socket_families_even_with_upper_bits(
    probes: tuple[dict[str, Any], ...],
) -> None:
    filtered, plain = probes
    allowed = {str(family.family) for family in seccomp.ALLOWED_SOCKET_FAMILIES}
    for family, got in filtered["socket"].items():
        if family in allowed:
            assert got != 1, f"family {family} is allowed but was denied"
        else:
            assert got == 1, f"family {family}: {got}"
    # control: the kernel takes the low 32 bits, so this is AF_VSOCK to the kernel
    assert plain["socket"][str(0x1_0000_0028)] != 1
    assert filtered["socketpair_vsock"] == 1


def test_denied_ioctls_even_with_upper_bits(probes: tuple[dict[str, Any], ...]) -> None:
    filtered, plain = probes
    for request, got in filtered["ioctl"].items():
        assert got == 1, f"ioctl {int(request):#x}: {got}"
        assert plain["ioctl"][request] == 9  # EBADF: the kernel sees the same request


def test_clone_with_namespace_flags_is_denied(probes: tuple[dict[str, Any], ...]) -> None:
    filtered, plain = probes
    for flag, got in filtered["clone"].items():
        assert got == 1, f"clone flag {int(flag):#x}: {got}"
        assert plain["clone"][flag] == 22  # EINVAL: CLONE_THREAD without CLONE_SIGHAND
