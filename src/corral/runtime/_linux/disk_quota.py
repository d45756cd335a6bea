"""Disk quotas for writable layers: a btrfs storage pool with one qgroup-limited subvolume each.

Host kernel facts that chose the design (kernel 6.18 here): ext4 project quota needs
`CONFIG_QFMT_V2` and XFS quota needs `CONFIG_XFS_QUOTA`, and this kernel has neither; btrfs
is built in, and its qgroups limit a subvolume without any quota-format support. So:

- **Pool**: one sparse image file `<state_dir>/disk-pool.img`, formatted btrfs once
  (`mkfs.btrfs`, from btrfs-progs) and loop-mounted (`mount -o loop`) on the runtime's
  sandboxes state dir with `discard=async`, so blocks freed inside are punched out of the
  image and return to the host. The image's size caps what all sandboxes together can take
  from the host disk. Quotas are enabled once, as *simple quotas* (kernel >= 6.7: usage is
  charged to the subvolume that allocated an extent, no backref walks) or full qgroups on
  older kernels. The pool is reused after a restart or a crash and unmounted on close.
- **Volume** (one per sandbox): `<pool>/<sandbox_id>` is a subvolume whose qgroup has a
  `max_rfer` limit; the overlay's upper and work dirs live in it. A write past the limit fails
  with `EDQUOT` ("Disk quota exceeded") inside the sandbox. Creating a volume and setting its
  limit are two ioctls (~0.05 ms); destroying it is one ioctl, and the kernel frees its
  blocks and (with simple quotas) its qgroup in the background. Subvolume ids are never
  reused, so nothing needs allocating and nothing stale can be handed to a new sandbox.
- **Credentials**: overlayfs writes to the upper layer with the credentials of the process
  that mounted it. `drop_quota_override` removes `CAP_SYS_RESOURCE` from the mounter's
  effective set first, so even with the pool's `quota_override` switched on the sandbox
  cannot write past its limit.

Usage and limit are read from `/sys/fs/btrfs/<fsid>/qgroups/0_<subvolume id>/` (updated
when btrfs commits a transaction, at most 30 s late). Every call raises `OSError`.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import fcntl
import logging
import os
import shutil
import struct
import uuid
from pathlib import Path

from corral.runtime._linux import syscalls

__all__ = [
    "StoragePool",
    "create_volume",
    "drop_quota_override",
    "remove_volume",
    "volume_usage",
]

log = logging.getLogger(__name__)

# ioctl numbers of include/uapi/linux/btrfs.h (magic 0x94), computed as _IOx(0x94, nr, size).
_BTRFS_IOC_SUBVOL_CREATE = 0x5000940E  # _IOW(14, struct btrfs_ioctl_vol_args: 4096)
_BTRFS_IOC_SNAP_DESTROY = 0x5000940F  # _IOW(15, struct btrfs_ioctl_vol_args: 4096)
_BTRFS_IOC_INO_LOOKUP = 0xD0009412  # _IOWR(18, struct btrfs_ioctl_ino_lookup_args: 4096)
_BTRFS_IOC_FS_INFO = 0x8400941F  # _IOR(31, struct btrfs_ioctl_fs_info_args: 1024)
_BTRFS_IOC_QUOTA_CTL = 0xC0109428  # _IOWR(40, struct btrfs_ioctl_quota_ctl_args: 16)
_BTRFS_IOC_QGROUP_LIMIT = 0x8030942B  # _IOR(43, struct btrfs_ioctl_qgroup_limit_args: 48)
_QUOTA_CTL_ENABLE = 1
_QUOTA_CTL_ENABLE_SIMPLE = 4
_QGROUP_LIMIT_MAX_RFER = 1
_FIRST_FREE_OBJECTID = 256  # the inode number of every subvolume's root directory
_VOL_ARGS = "q4088s"
_CAP_SYS_RESOURCE = 24
_CAPABILITY_VERSION_3 = 0x20080522


class StoragePool:
    """The loop-mounted btrfs image that holds every sandbox's volume (see module doc)."""

    def __init__(self, image: Path, mountpoint: Path, size_mb: int) -> None:
        self.image = image
        self.mountpoint = mountpoint
        self.size_mb = size_mb
        """Size of a new image; 0: half the free space of the image's file system."""

    async def open(self) -> None:
        """Make the image if absent, mount it if it is not, enable quotas."""
        if _is_btrfs_mount(self.mountpoint):
            return  # left mounted by a server that crashed: reuse it as it is
        self.mountpoint.mkdir(parents=True, exist_ok=True, mode=0o700)
        if any(self.mountpoint.iterdir()):
            raise OSError(
                errno.ENOTEMPTY,
                f"{self.mountpoint} is not empty: it is where the disk pool gets mounted; "
                "stop the sandboxes it holds (or remove its entries) and start again",
            )
        if not self.image.exists():
            await self._make_image()
        await _run(
            "mount", "-o", "loop,discard=async,noatime", str(self.image), str(self.mountpoint)
        )
        os.chmod(self.mountpoint, 0o700)
        _enable_quotas(str(self.mountpoint))

    async def _make_image(self) -> None:
        size = self.size_mb * 1024 * 1024 or _half_free_bytes(self.image.parent)
        partial = self.image.with_name(self.image.name + ".new")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(fd, size)  # sparse: blocks are taken as sandboxes write
        finally:
            os.close(fd)
        try:
            await _run("mkfs.btrfs", "-q", "-f", "-m", "single", "-d", "single", str(partial))
            partial.rename(self.image)
        finally:
            partial.unlink(missing_ok=True)
        log.info("made the disk pool %s (%d MiB, sparse)", self.image, size >> 20)

    def close(self) -> None:
        """Unmount the pool once it holds no volume; otherwise it stays for the next `open`.

        Volumes left (sandboxes not stopped) may still back live overlays in sandbox mount
        namespaces: unmounting here and mounting the image again at the next `open` would
        put a second file system over the same blocks.
        """
        if not _is_btrfs_mount(self.mountpoint) or any(self.mountpoint.iterdir()):
            return
        try:
            syscalls.umount2(str(self.mountpoint), 0)
        except OSError as exc:
            log.warning("disk pool %s stays mounted: %s", self.mountpoint, exc)


def create_volume(path: str, limit_bytes: int) -> None:
    """Make `path` a subvolume of the pool limited to `limit_bytes` (data and metadata)."""
    parent, name = os.path.split(path)
    parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(parent_fd, _BTRFS_IOC_SUBVOL_CREATE, _vol_args(name), True)
    finally:
        os.close(parent_fd)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        limit = struct.pack("6Q", 0, _QGROUP_LIMIT_MAX_RFER, limit_bytes, 0, 0, 0)
        fcntl.ioctl(fd, _BTRFS_IOC_QGROUP_LIMIT, limit)
    finally:
        os.close(fd)


def remove_volume(path: str) -> None:
    """Remove the sandbox directory `path` (a volume, or a plain directory); absent is fine."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if info.st_ino == _FIRST_FREE_OBJECTID:  # a volume's root (or a plain dir: ENOTTY)
        parent, name = os.path.split(path)
        parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.ioctl(parent_fd, _BTRFS_IOC_SNAP_DESTROY, _vol_args(name), True)
            return
        except OSError as exc:
            if exc.errno != errno.ENOTTY:
                log.warning("could not destroy volume %s (%s); removing its files", path, exc)
        finally:
            os.close(parent_fd)
    shutil.rmtree(path)


def volume_usage(path: str) -> tuple[int, int] | None:
    """(used, limit) bytes of the volume at `path`; None if it is not a volume of a pool
    with quotas. `limit` is 0 when the volume has none."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if os.fstat(fd).st_ino != _FIRST_FREE_OBJECTID:
            return None
        info = bytearray(1024)
        fcntl.ioctl(fd, _BTRFS_IOC_FS_INFO, info, True)
        lookup = bytearray(struct.pack("QQ4080s", 0, _FIRST_FREE_OBJECTID, b""))
        fcntl.ioctl(fd, _BTRFS_IOC_INO_LOOKUP, lookup, True)
    except OSError:
        return None
    finally:
        os.close(fd)
    fsid = uuid.UUID(bytes=bytes(info[16:32]))
    (subvolume,) = struct.unpack_from("Q", lookup)
    qgroup = Path(f"/sys/fs/btrfs/{fsid}/qgroups/0_{subvolume}")
    try:
        used = int((qgroup / "referenced").read_text())
        limit = int((qgroup / "max_referenced").read_text())
    except (OSError, ValueError):
        return None
    return used, max(limit, 0)


def drop_quota_override() -> None:
    """Remove CAP_SYS_RESOURCE from the calling thread's effective capabilities.

    Call it before mounting an overlay whose upper layer is in a volume: overlayfs records
    the mounter's credentials and uses them for every write to the upper layer, and
    CAP_SYS_RESOURCE may exceed quota limits (btrfs honours it when `quota_override` is on;
    ext4 and XFS always). Permitted capabilities stay, so this is only a guard for the mount.
    """
    header = (ctypes.c_uint32 * 2)(_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    if _libc.capget(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    data[0] &= ~(1 << _CAP_SYS_RESOURCE)  # effective, low 32 capabilities
    if _libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


_libc = ctypes.CDLL(None, use_errno=True)


def _vol_args(name: str) -> bytearray:
    encoded = os.fsencode(name)
    if not encoded or b"/" in encoded or len(encoded) > 255:
        raise OSError(errno.EINVAL, f"invalid volume name {name!r}")
    return bytearray(struct.pack(_VOL_ARGS, 0, encoded))


def _enable_quotas(mountpoint: str) -> None:
    fd = os.open(mountpoint, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for command in (_QUOTA_CTL_ENABLE_SIMPLE, _QUOTA_CTL_ENABLE):
            try:
                fcntl.ioctl(
                    fd, _BTRFS_IOC_QUOTA_CTL, bytearray(struct.pack("QQ", command, 0)), True
                )
                return
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # EINVAL: simple quotas unknown to this kernel
                    raise
        raise OSError(errno.EINVAL, f"cannot enable btrfs quotas on {mountpoint}")
    finally:
        os.close(fd)


def _is_btrfs_mount(path: Path) -> bool:
    target = str(path)
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            separator = fields.index("-")
            if fields[4] == target and fields[separator + 1] == "btrfs":
                return True
    return False


def _half_free_bytes(directory: Path) -> int:
    stats = os.statvfs(directory)
    return max(stats.f_bavail * stats.f_frsize // 2, 1 << 30)


async def _run(*argv: str) -> None:
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except FileNotFoundError as exc:
        raise OSError(
            errno.ENOENT, f"{argv[0]} is missing: install btrfs-progs and util-linux"
        ) from exc
    output, _ = await process.communicate()
    if process.returncode != 0:
        text = output.decode(errors="replace").strip()
        raise OSError(errno.EIO, f"{' '.join(argv)} failed ({process.returncode}): {text}")
