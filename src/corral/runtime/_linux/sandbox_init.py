"""Builds one sandbox. Runs only in processes forked from the launcher; never returns.

Sequence (each step's process in brackets):

1. [setup, host root] die with the launcher (a sandbox nobody would hear of must not be
   finished); join the sandbox cgroups; bind the agent's listening socket on the host;
   take the sandbox's user namespace from the launcher; enter a private mount namespace; clone each
   template layer as a detached mount, idmap it to the sandbox's uid range, attach it to a
   private staging directory, and mount the overlay rootfs (layers read-only, upper layer owned
   by the sandbox). Nothing is mounted in the host's mount namespace, so the kernel removes
   every mount when the sandbox's last process exits, even after a crash.
   Still as host root: unshare the network namespace and wire it to the gateway
   (`sandbox_net`; owned by the host's user namespace, so sandbox root cannot reconfigure
   it), mount a read-only sysfs of it (a sysfs mount needs privilege over the network
   namespace) and write /etc/resolv.conf naming the gateway's resolver.
2. [setup, sandbox root] join the user namespace, become its root, and unshare the mount, pid,
   uts, ipc and cgroup namespaces (owned by that user namespace); fork the init process,
   report its pid and exit.
3. [init = pid 1, sandbox root] mount /proc, /dev (tmpfs with bound device nodes and a private
   devpts) and /dev/shm; mask host-revealing /proc and /sys entries (files
   bound to /dev/null, directories under an empty read-only tmpfs); set the hostname;
   pivot_root into the rootfs and drop the old root; load the seccomp filter;
   report ready; run the agent.

Every step reports failure as one `error <message>` line on the status pipe and exits.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import sys
from dataclasses import dataclass
from typing import NoReturn

from corral.agent import serve
from corral.model import Limits, SandboxNetwork
from corral.protocol import AgentConfig
from corral.runtime._linux import syscalls as sc
from corral.runtime._linux.cgroups import CgroupLayout
from corral.runtime._linux.disk_quota import create_volume, drop_quota_override
from corral.runtime._linux.sandbox_net import enter_new_netns

__all__ = ["CreateRequest", "run_setup"]

_DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
_MASKED_PROC_FILES = (
    "kcore",
    "keys",
    "key-users",
    "timer_list",
    "sched_debug",
    "sysrq-trigger",
    "kallsyms",
    "kpagecount",
    "kpageflags",
    "kpagecgroup",
    "latency_stats",
    "timer_stats",
    "config.gz",
    "kmsg",
    "vmallocinfo",
)
_READONLY_PROC_DIRS = ("sys", "bus", "fs", "irq")
# Replaced by an empty read-only tmpfs: hardware and firmware of the host.
_HIDDEN_PROC_DIRS = ("acpi", "scsi", "asound", "driver")
_HIDDEN_SYS_DIRS = ("firmware", "devices/virtual/powercap", "kernel/debug", "kernel/security")
# Bound to /dev/null: `vmcoreinfo` holds a physical address of the kernel (KASLR).
_MASKED_SYS_FILES = ("kernel/vmcoreinfo",)


@dataclass(frozen=True)
class CreateRequest:
    """What the launcher needs to build one sandbox (all host paths absolute)."""

    sandbox_id: str
    layers: tuple[str, ...]
    uid_base: int
    limits: Limits
    hostname: str
    state_dir: str
    run_dir: str
    agent_config: str
    network: SandboxNetwork | None = None

    @property
    def upper_dir(self) -> str:
        return f"{self.state_dir}/upper"

    @property
    def work_dir(self) -> str:
        return f"{self.state_dir}/work"

    @property
    def socket_path(self) -> str:
        return f"{self.run_dir}/agent.sock"


def run_setup(
    req: CreateRequest,
    status_fd: int,
    userns_fd: int,
    layout: CgroupLayout,
    seccomp: bytes,
) -> NoReturn:
    """Step 1 and 2, in the process the launcher forked. Exits with the outcome on `status_fd`.

    `userns_fd` is the sandbox's user namespace (see `userns.UserNamespaces`).
    """
    try:
        _die_with_the_launcher()
        _prepare_process(keep=(status_fd, userns_fd))
        rootfs = _prepare_dirs(req)  # first: the dirs are what marks the sandbox as ours
        cgroup = layout.sandbox(req.sandbox_id)
        cgroup.create(req.limits)
        cgroup.join(0)
        _limit_open_files(req.limits.open_files)
        _spread_cpus(req.limits.cpu_count, req.uid_base // 65536)
        listener = _bind_agent_socket(req.socket_path)
        _mount_rootfs(req, rootfs, userns_fd)
        enter_new_netns(req.network)
        _mount_sysfs(rootfs)
        if req.network is not None:
            _write_resolv_conf(rootfs, str(req.network.gateway), req.uid_base)
        os.chdir(rootfs)  # the sandbox's root cannot traverse the host's run dir; keep a handle
        sc.setns(userns_fd, sc.CLONE_NEWUSER)
        os.close(userns_fd)
        os.setgroups([])
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        sc.unshare(
            sc.CLONE_NEWNS
            | sc.CLONE_NEWPID
            | sc.CLONE_NEWUTS
            | sc.CLONE_NEWIPC
            | sc.CLONE_NEWCGROUP
        )
        pid = os.fork()
        if pid == 0:
            _run_init(req, listener, status_fd, seccomp)
        os.write(status_fd, f"pid {pid}\n".encode())
        os._exit(0)
    except BaseException as exc:  # noqa: BLE001 - every failure must be reported, then exit
        _fail(status_fd, f"setup: {exc}")


def _run_init(
    req: CreateRequest,
    listener: socket.socket,
    status_fd: int,
    seccomp: bytes,
) -> NoReturn:
    """Step 3, as pid 1 of the sandbox, with the rootfs as working directory."""
    try:
        _remount_rootfs_unlocked()
        _mount_special_filesystems(".")
        socket.sethostname(req.hostname)
        sc.pivot_root(".", ".")
        sc.umount2(".", sc.MNT_DETACH)
        os.chdir("/")
        sc.set_seccomp_filter(seccomp)
        config = AgentConfig.from_json(req.agent_config)
        devnull = os.open("/dev/null", os.O_RDWR)
        os.dup2(devnull, 2)
        os.close(devnull)
        os.write(status_fd, b"ready\n")
        os.close(status_fd)
    except BaseException as exc:  # noqa: BLE001
        _fail(status_fd, f"init: {exc}")
    try:
        serve(listener, config)
    finally:
        os._exit(0)


def _die_with_the_launcher() -> None:
    """A setup whose launcher died could only finish a sandbox nobody knows of (and whose
    uid slot the server has released): SIGKILL it with the launcher. The runtime then
    removes what it made so far; init, once forked, is in the sandbox's cgroups."""
    launcher = os.getppid()
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != launcher:
        os._exit(1)


def _prepare_process(keep: tuple[int, int]) -> None:
    """Drop everything inherited from the launcher but stderr and the fds in `keep`."""
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    devnull = os.open("/dev/null", os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    low, high = sorted(keep)
    os.closerange(3, low)
    os.closerange(low + 1, high)
    os.closerange(high + 1, 1 << 20)


def _limit_open_files(limit: int) -> None:
    """RLIMIT_NOFILE of the agent and, inherited, of every process of the sandbox.

    Set while still host root (which may raise the hard limit); sandbox root cannot raise
    it again (that needs CAP_SYS_RESOURCE in the host's user namespace).
    """
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


def _spread_cpus(cpu_count: int, seed: int) -> None:
    """Let `nproc` (CPU affinity) inside show the sandbox's CPU count.

    The limit itself is the CFS quota; this is the hint tools size their worker pools by
    (sandbox root may widen it, which gains nothing under the quota). Sandboxes start at
    different CPUs, by uid slot, so small ones do not all crowd the first.
    """
    available = sorted(os.sched_getaffinity(0))
    if cpu_count < len(available):
        chosen = {available[(seed + i) % len(available)] for i in range(cpu_count)}
        os.sched_setaffinity(0, chosen)


def _prepare_dirs(req: CreateRequest) -> str:
    base = req.uid_base
    # The state dir is a volume of the disk pool, limited to the sandbox's disk size.
    create_volume(req.state_dir, req.limits.disk_mb * 1024 * 1024)
    os.makedirs(req.upper_dir, mode=0o755, exist_ok=True)
    os.makedirs(req.work_dir, mode=0o700, exist_ok=True)
    os.chown(req.upper_dir, base, base)
    os.chmod(req.upper_dir, 0o755)
    rootfs = f"{req.run_dir}/rootfs"
    os.makedirs(rootfs, mode=0o700, exist_ok=True)
    for index in range(len(req.layers)):
        os.makedirs(f"{req.run_dir}/layer{index}", mode=0o700, exist_ok=True)
    return rootfs


def _bind_agent_socket(path: str) -> socket.socket:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(512)
    listener.set_inheritable(True)
    return listener


def _mount_rootfs(req: CreateRequest, rootfs: str, userns_fd: int) -> None:
    sc.unshare(sc.CLONE_NEWNS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE, None)
    staged: list[str] = []
    for index, layer in enumerate(req.layers):
        target = f"{req.run_dir}/layer{index}"
        fd = sc.open_tree(layer, sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC)
        try:
            sc.mount_setattr(fd, sc.MOUNT_ATTR_IDMAP | sc.MOUNT_ATTR_RDONLY, userns_fd)
            sc.move_mount(fd, target)
        finally:
            os.close(fd)
        staged.append(target)
    lower = ":".join(reversed(staged))
    # Explicit, host-independent features: an upper dir written this way can later become
    # a plain lower layer (no redirect or metacopy xattrs, no index tied to this mount).
    # `volatile`: no sync to the upper layer (fsync inside is a no-op, unmount does not
    # commit the disk pool): a writable layer never outlives its sandbox, and a sandbox's
    # fsync storm cannot stall the host's disk for its neighbours.
    options = (
        f"lowerdir={lower},upperdir={req.upper_dir},workdir={req.work_dir},"
        "redirect_dir=off,index=off,metacopy=off,volatile"
    )
    # Overlay writes the upper layer with the mounter's credentials: without
    # CAP_SYS_RESOURCE they cannot exceed the volume's quota.
    drop_quota_override()
    sc.mount("overlay", rootfs, "overlay", 0, options)


def _remount_rootfs_unlocked() -> None:
    """Put a bind of the rootfs (the working directory) over itself and enter it.

    The overlay was mounted in a namespace of the host's user namespace, so in the sandbox's
    mount namespace it is locked and `pivot_root` refuses it; a bind made here is not locked.
    Recursive: the sysfs below stays (locked, read-only).
    """
    fd = sc.open_tree(".", sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC | sc.AT_RECURSIVE)
    try:
        sc.move_mount(fd, ".")
        os.fchdir(fd)
    finally:
        os.close(fd)


def _mount_special_filesystems(rootfs: str) -> None:
    nosuid_nodev_noexec = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
    proc = f"{rootfs}/proc"
    os.makedirs(proc, exist_ok=True)
    sc.mount("proc", proc, "proc", nosuid_nodev_noexec, None)
    _mask_proc(proc, nosuid_nodev_noexec)

    dev = f"{rootfs}/dev"
    os.makedirs(dev, exist_ok=True)
    sc.mount("tmpfs", dev, "tmpfs", sc.MS_NOSUID | sc.MS_NOEXEC, "mode=755,size=65536k")
    for name in _DEV_NODES:
        node = f"{dev}/{name}"
        os.close(os.open(node, os.O_CREAT | os.O_WRONLY, 0o666))
        sc.mount(f"/dev/{name}", node, None, sc.MS_BIND, None)
    os.mkdir(f"{dev}/pts", 0o755)
    sc.mount(
        "devpts",
        f"{dev}/pts",
        "devpts",
        sc.MS_NOSUID | sc.MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620,gid=5",
    )
    os.symlink("pts/ptmx", f"{dev}/ptmx")
    os.mkdir(f"{dev}/shm", 0o1777)
    sc.mount("shm", f"{dev}/shm", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "mode=1777,size=65536k")
    for link, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, f"{dev}/{link}")

    _mask(f"{rootfs}/sys", _MASKED_SYS_FILES, _HIDDEN_SYS_DIRS)


def _mount_sysfs(rootfs: str) -> None:
    """A read-only sysfs showing the sandbox's network namespace (host root, setup step)."""
    sys_dir = f"{rootfs}/sys"
    os.makedirs(sys_dir, exist_ok=True)
    flags = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_RDONLY
    sc.mount("sysfs", sys_dir, "sysfs", flags, None)


def _write_resolv_conf(rootfs: str, resolver: str, uid_base: int) -> None:
    """/etc/resolv.conf naming the gateway's resolver (a regular file owned by sandbox
    root, replacing whatever the template had; DNS to any other server is dropped anyway)."""
    path = f"{rootfs}/etc/resolv.conf"
    if not os.path.isdir(f"{rootfs}/etc"):
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, f"nameserver {resolver}\n".encode())
        os.fchown(fd, uid_base, uid_base)
    finally:
        os.close(fd)


def _mask(root: str, files: tuple[str, ...], dirs: tuple[str, ...]) -> None:
    """Bind /dev/null over `files` and an empty read-only tmpfs over `dirs` under `root`.

    The sandbox cannot undo either: `umount2` and every mount call are denied by seccomp.
    """
    for name in files:
        path = f"{root}/{name}"
        if os.path.exists(path):
            sc.mount("/dev/null", path, None, sc.MS_BIND, None)
    hidden = sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
    for name in dirs:
        path = f"{root}/{name}"
        if os.path.isdir(path):
            sc.mount("tmpfs", path, "tmpfs", hidden, "size=4k,nr_inodes=1,mode=555")


def _mask_proc(proc: str, locked_flags: int) -> None:
    """Hide host-revealing /proc files and make host-wide tunables read-only."""
    _mask(proc, _MASKED_PROC_FILES, _HIDDEN_PROC_DIRS)
    for name in _READONLY_PROC_DIRS:
        path = f"{proc}/{name}"
        if os.path.isdir(path):
            sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC, None)
            sc.mount(
                None, path, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | locked_flags, None
            )


def _fail(status_fd: int, message: str) -> NoReturn:
    try:
        os.write(status_fd, f"error {message}".replace("\n", " ").encode()[:4000] + b"\n")
    except OSError:
        pass
    try:
        sys.stderr.flush()
    finally:
        os._exit(1)
