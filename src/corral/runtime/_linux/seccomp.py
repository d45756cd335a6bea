"""The seccomp deny list applied to every process of a sandbox (the agent and its children).

Policy is data: each entry names the syscall (or the argument value), the errno it gets, and
why it is denied. Everything not listed is allowed; the user namespace already strips host
privileges, so this list removes kernel surface that a sandbox never needs and that container
escapes have used. Syscalls of foreign architectures (i386, x32) kill the caller: libseccomp's
default for a filter that lists only the native architecture.

Argument rules compare what the kernel will use, not the raw 64-bit register: `socket`'s
family and `ioctl`'s request are 32-bit in the kernel, so a caller could set the upper bits
to slip past an equality test (`socket(0x1_0000_0028, ...)` is still AF_VSOCK). Requests
are compared under a 32-bit mask, and every family outside the allowed set is denied,
including any value of 64 or more (which covers the upper-bit variants).

`THREAT_MODEL.md` renders this policy as a table; `tests/security/test_escapes_policy.py`
checks that the table and this data agree and that each entry is enforced.

The filter is installed without `no_new_privs` (so `sudo` works inside the sandbox, where it can
only ever reach the sandbox's own root); loading it needs CAP_SYS_ADMIN in the sandbox's user
namespace, which the sandbox init process has before it drops to the agent.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

import pyseccomp

from corral.runtime._linux import syscalls

__all__ = [
    "ALLOWED_SOCKET_FAMILIES",
    "DENIED",
    "DENIED_CLONE_FLAGS",
    "DENIED_IOCTLS",
    "SOCKET_FAMILY_LIMIT",
    "SOCKET_FAMILY_REASON",
    "AllowedSocketFamily",
    "Denial",
    "DeniedIoctl",
    "build_filter",
    "compile_filter",
]


@dataclass(frozen=True)
class Denial:
    """A syscall the sandbox may not make at all."""

    syscall: str
    errno: int
    reason: str


_EPERM = errno.EPERM
DENIED: tuple[Denial, ...] = (
    Denial("mount", _EPERM, "remounting or mounting over the rootfs; setup is done before start"),
    Denial("umount2", _EPERM, "unmounting masks over /proc would reveal host data"),
    Denial("pivot_root", _EPERM, "the root is fixed at start"),
    Denial("move_mount", _EPERM, "new mount API: same reason as mount"),
    Denial("open_tree", _EPERM, "new mount API: cloning mounts"),
    Denial("fsopen", _EPERM, "new mount API: creating filesystems"),
    Denial("fsconfig", _EPERM, "new mount API"),
    Denial("fsmount", _EPERM, "new mount API"),
    Denial("fspick", _EPERM, "new mount API: reconfiguring mounts"),
    Denial("mount_setattr", _EPERM, "changing mount flags (e.g. dropping read-only)"),
    Denial("unshare", _EPERM, "nested namespaces widen kernel attack surface (userns escapes)"),
    Denial("setns", _EPERM, "joining other namespaces"),
    Denial(
        "clone3", errno.ENOSYS, "flags cannot be filtered; ENOSYS makes libc fall back to clone"
    ),
    Denial("ptrace", _EPERM, "process inspection; a classic escape and info-leak vector"),
    Denial("process_vm_readv", _EPERM, "reading another process's memory"),
    Denial("process_vm_writev", _EPERM, "writing another process's memory"),
    Denial("kcmp", _EPERM, "comparing kernel objects across processes (info leak)"),
    Denial("bpf", _EPERM, "eBPF programs: large kernel surface, frequent CVEs"),
    Denial("perf_event_open", _EPERM, "performance counters: side channels and CVEs"),
    Denial("userfaultfd", _EPERM, "used to widen race windows in kernel exploits"),
    Denial("keyctl", _EPERM, "kernel keyrings are not namespaced"),
    Denial("add_key", _EPERM, "kernel keyrings are not namespaced"),
    Denial("request_key", _EPERM, "kernel keyrings are not namespaced"),
    Denial("init_module", _EPERM, "loading kernel modules"),
    Denial("finit_module", _EPERM, "loading kernel modules"),
    Denial("delete_module", _EPERM, "unloading kernel modules"),
    Denial("kexec_load", _EPERM, "replacing the running kernel"),
    Denial("kexec_file_load", _EPERM, "replacing the running kernel"),
    Denial("reboot", _EPERM, "host power state"),
    Denial("swapon", _EPERM, "host swap configuration"),
    Denial("swapoff", _EPERM, "host swap configuration"),
    Denial("acct", _EPERM, "host process accounting"),
    Denial("quotactl", _EPERM, "host filesystem quotas"),
    Denial("quotactl_fd", _EPERM, "host filesystem quotas"),
    Denial(
        "open_by_handle_at", _EPERM, "opens files by handle, bypassing the mount root (shocker)"
    ),
    Denial("name_to_handle_at", _EPERM, "companion of open_by_handle_at"),
    Denial("lookup_dcookie", _EPERM, "kernel profiling interface"),
    Denial("syslog", _EPERM, "kernel log reveals host information"),
    Denial("settimeofday", _EPERM, "the clock is host-wide"),
    Denial("clock_settime", _EPERM, "the clock is host-wide"),
    Denial("clock_adjtime", _EPERM, "the clock is host-wide"),
    Denial("adjtimex", _EPERM, "the clock is host-wide"),
    Denial("iopl", _EPERM, "raw I/O port access"),
    Denial("ioperm", _EPERM, "raw I/O port access"),
    Denial("vhangup", _EPERM, "hangs up terminals"),
    Denial("nfsservctl", _EPERM, "kernel NFS server control"),
    Denial("uselib", _EPERM, "obsolete loader interface"),
    Denial("personality", _EPERM, "can disable ASLR and enable READ_IMPLIES_EXEC"),
    Denial("fanotify_init", _EPERM, "filesystem-wide monitoring"),
    Denial("io_uring_setup", _EPERM, "io_uring: large kernel surface with a long CVE record"),
    Denial("io_uring_enter", _EPERM, "io_uring (see io_uring_setup)"),
    Denial("io_uring_register", _EPERM, "io_uring (see io_uring_setup)"),
    Denial("pidfd_getfd", _EPERM, "copies another process's file descriptors (ptrace access)"),
    Denial("process_madvise", _EPERM, "acts on another process's memory (ptrace access)"),
    Denial("vm86", _EPERM, "virtual 8086 mode (32-bit x86 only): old CVEs, never needed"),
    Denial("vm86old", _EPERM, "virtual 8086 mode (see vm86)"),
    Denial("_sysctl", _EPERM, "obsolete binary sysctl interface to host-wide tunables"),
    Denial("sysfs", _EPERM, "obsolete: lists the kernel's filesystem types"),
    Denial("ustat", _EPERM, "obsolete: statistics of host filesystems by device number"),
    Denial("create_module", _EPERM, "obsolete module interface (see init_module)"),
    Denial("get_kernel_syms", _EPERM, "obsolete: kernel symbol addresses"),
    Denial("query_module", _EPERM, "obsolete: kernel module information"),
)

# Namespace flags that `clone` must not carry (same reason as unshare).
DENIED_CLONE_FLAGS: tuple[int, ...] = (
    syscalls.CLONE_NEWNS,
    syscalls.CLONE_NEWCGROUP,
    syscalls.CLONE_NEWUTS,
    syscalls.CLONE_NEWIPC,
    syscalls.CLONE_NEWUSER,
    syscalls.CLONE_NEWPID,
    syscalls.CLONE_NEWNET,
)


@dataclass(frozen=True)
class AllowedSocketFamily:
    """An address family `socket` and `socketpair` may create; every other one is denied."""

    family: int
    name: str
    reason: str


ALLOWED_SOCKET_FAMILIES: tuple[AllowedSocketFamily, ...] = (
    AllowedSocketFamily(1, "AF_UNIX", "local IPC; the sandbox's own mount and net namespace"),
    AllowedSocketFamily(2, "AF_INET", "TCP/UDP/ICMP in the sandbox's own net namespace"),
    AllowedSocketFamily(10, "AF_INET6", "as AF_INET"),
    AllowedSocketFamily(16, "AF_NETLINK", "`ip`, glibc's getaddrinfo; scoped to the net namespace"),
)
# Families below this value that are not allowed get one rule each; any value from it up
# (including upper-bit variants of small values) is denied by a single `>=` rule.
SOCKET_FAMILY_LIMIT = 64
SOCKET_FAMILY_REASON = (
    "every other address family: some are not network-namespaced (AF_VSOCK reaches the "
    "hypervisor on VM hosts, AF_BLUETOOTH), the rest autoload rarely used protocol modules "
    "with a long CVE record (AF_PACKET, AF_RDS, AF_TIPC, AF_ALG, AF_KCM, ...)"
)

_ALL_32_BITS = 0xFFFF_FFFF


@dataclass(frozen=True)
class DeniedIoctl:
    """An `ioctl` request the sandbox may not make (compared on its low 32 bits)."""

    request: int
    name: str
    reason: str


DENIED_IOCTLS: tuple[DeniedIoctl, ...] = (
    DeniedIoctl(
        0x5412,
        "TIOCSTI",
        "pushes input into a terminal: a process holding an outer terminal could type into it",
    ),
    DeniedIoctl(0x541C, "TIOCLINUX", "virtual console control (selection, input injection)"),
)

_ATTR_NO_NEW_PRIVS = 3


def build_filter() -> pyseccomp.SyscallFilter:
    """Build (not load) the sandbox filter; build once, `load()` in every sandbox init."""
    flt = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    flt.set_attr(_ATTR_NO_NEW_PRIVS, 0)
    eperm = pyseccomp.ERRNO(errno.EPERM)
    for denial in DENIED:
        flt.add_rule(pyseccomp.ERRNO(denial.errno), denial.syscall)
    for flag in DENIED_CLONE_FLAGS:
        flt.add_rule(eperm, "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, flag, flag))
    allowed = {family.family for family in ALLOWED_SOCKET_FAMILIES}
    for syscall in ("socket", "socketpair"):
        for family in range(SOCKET_FAMILY_LIMIT):
            if family not in allowed:
                flt.add_rule(eperm, syscall, pyseccomp.Arg(0, pyseccomp.EQ, family))
        flt.add_rule(eperm, syscall, pyseccomp.Arg(0, pyseccomp.GE, SOCKET_FAMILY_LIMIT))
    for ioctl in DENIED_IOCTLS:
        flt.add_rule(
            eperm, "ioctl", pyseccomp.Arg(1, pyseccomp.MASKED_EQ, _ALL_32_BITS, ioctl.request)
        )
    return flt


def compile_filter() -> bytes:
    """The sandbox filter as a classic-BPF program, compiled once by the launcher.

    Loading precompiled bytes (`syscalls.set_seccomp_filter`) in each sandbox saves the
    ~0.4 ms and ~0.5 MiB of private memory that libseccomp spends compiling per process.
    """
    fd = os.memfd_create("corral-seccomp", os.MFD_CLOEXEC)
    try:
        with os.fdopen(os.dup(fd), "wb") as out:
            build_filter().export_bpf(out)
        size = os.lseek(fd, 0, os.SEEK_END)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)
