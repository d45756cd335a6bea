"""Runs build steps as host root in a private mount + pid namespace (`unshare`) and chroot.

Every step runs under ``unshare --mount --pid --fork --kill-child``: whatever the step
mounts (overlay, /proc, /dev nodes, resolv.conf) lives in a mount namespace that dies with
the step, and every process it leaves behind dies with the namespace's pid 1. So nothing is
left mounted or running on the host after a step, whether it succeeded, failed or the
builder was killed. Recipes are trusted input: a RUN step is root in a chroot, which is no
security boundary.
"""

from __future__ import annotations

import collections
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from corral.templates.errors import BuildError
from corral.templates.recipe import DebootstrapBase, RunStep
from corral.templates.runner import SOURCE_DATE_EPOCH, LineSink, StepOutcome

__all__ = ["NamespaceStepRunner", "build_environment"]

_TAIL_LINES = 40
_UNSHARE = (
    "unshare",
    "--mount",
    "--pid",
    "--fork",
    "--kill-child",
    "--propagation",
    "private",
    "--",
)
_PASSED_THROUGH = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY")

# The host's trust store is handed to RUN steps (pip, curl, npm, deno, Python's ssl) as a
# file on the step's private /dev tmpfs, so downloads work behind a TLS-inspecting proxy the
# host trusts, and nothing of the host's trust ends up in a layer.
_HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_STEP_CA_BUNDLE = "/dev/corral-build/ca-certificates.crt"
_CA_VARIABLES = (
    "SSL_CERT_FILE",
    "PIP_CERT",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "DENO_CERT",
)

# Inside the chroot after debootstrap: drop what debootstrap leaves that a template must not
# carry (apt lists and caches, logs, the host's resolv.conf and hostname).
_FINALIZE_BOOTSTRAP = r"""
apt-get clean
find /var/lib/apt/lists -mindepth 1 -maxdepth 1 ! -name partial ! -name lock -exec rm -rf {} +
rm -f /var/cache/apt/pkgcache.bin /var/cache/apt/srcpkgcache.bin
rm -f /var/log/bootstrap.log /var/log/dpkg.log /var/log/alternatives.log
rm -f /var/log/apt/history.log /var/log/apt/term.log /var/log/apt/eipp.log.xz
rm -f /var/cache/debconf/*-old /var/lib/dpkg/*-old
rm -f /etc/resolv.conf && : > /etc/resolv.conf && chmod 0644 /etc/resolv.conf
rm -f /etc/hostname && printf 'localhost\n' > /etc/hostname && chmod 0644 /etc/hostname
"""

# $1 rootfs, $2 packages file, $3 finalize script, then the debootstrap command line.
_BOOTSTRAP_SCRIPT = r"""
set -eu
rootfs=$1 packages=$2 finalize=$3
shift 3
"$@"
chroot "$rootfs" /bin/sh -eu -c "$finalize"
chroot "$rootfs" dpkg-query -W -f '${Package}\t${Version}\n' > "$packages"
"""

# $1 mount point, $2 overlay options, $3 resolv.conf copy, $4 packages file, $5 command,
# $6 the host's CA bundle or "", then NAME=VALUE pairs: the step's whole environment. Runs
# as pid 1 of a fresh pid namespace.
_RUN_SCRIPT = r"""
set -eu
merged=$1 options=$2 resolv=$3 packages=$4 command=$5 ca=$6
shift 6
mount -t overlay overlay -o "$options" "$merged"
mount -t proc -o nosuid,nodev,noexec proc "$merged/proc"
mount -t tmpfs -o mode=0755,nosuid,size=8m corral-dev "$merged/dev"
for node in null zero full random urandom tty; do
    : > "$merged/dev/$node"
    mount --bind "/dev/$node" "$merged/dev/$node"
done
ln -s /proc/self/fd "$merged/dev/fd"
ln -s /proc/self/fd/0 "$merged/dev/stdin"
ln -s /proc/self/fd/1 "$merged/dev/stdout"
ln -s /proc/self/fd/2 "$merged/dev/stderr"
mkdir "$merged/dev/pts" "$merged/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$merged/dev/pts"
ln -s pts/ptmx "$merged/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev corral-shm "$merged/dev/shm"
if [ -n "$ca" ]; then
    mkdir "$merged/dev/corral-build"
    cp "$ca" "$merged/dev/corral-build/ca-certificates.crt"
fi
if [ -f "$merged/etc/resolv.conf" ] && [ ! -L "$merged/etc/resolv.conf" ]; then
    mount --bind "$resolv" "$merged/etc/resolv.conf"
fi
set +e
env -i "$@" chroot "$merged" /bin/sh -c "$command" < /dev/null
status=$?
# Only as pid 1 of the step's own pid namespace does `kill -1` mean "the step's leftovers".
if [ "$$" -eq 1 ]; then kill -KILL -1 2>/dev/null; fi
if [ "$status" -eq 0 ]; then
    chroot "$merged" dpkg-query -W -f '${Package}\t${Version}\n' > "$packages" 2>/dev/null \
        || : > "$packages"
fi
umount -R "$merged" || umount -R -l "$merged"
exit "$status"
"""


def build_environment(extra: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """The whole environment of a build step: fixed values, proxies of the host, `extra`."""
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "DEBIAN_FRONTEND": "noninteractive",
        "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH),
    }
    env.update({key: os.environ[key] for key in _PASSED_THROUGH if key in os.environ})
    env.update(extra)
    return env


def _host_ca_bundle() -> str:
    """The host's CA bundle (``SSL_CERT_FILE`` or Debian's), or "" if it has none."""
    for candidate in (os.environ.get("SSL_CERT_FILE", ""), str(_HOST_CA_BUNDLE)):
        if candidate and os.path.isfile(candidate):
            return candidate
    return ""


def _parse_packages(path: Path) -> dict[str, str]:
    packages: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(errors="replace").splitlines():
            name, sep, version = line.partition("\t")
            if sep and name:
                packages[name] = version
    return packages


def _overlay_options(lowers: Sequence[Path], upper: Path, work: Path) -> str:
    # overlayfs wants the topmost lower first. redirect_dir/metacopy/index off keep each
    # upper dir self-contained, so it can serve as a plain lower layer later.
    lowerdir = ":".join(str(path) for path in reversed(lowers))
    options = (
        f"lowerdir={lowerdir},upperdir={upper},workdir={work},"
        "redirect_dir=off,metacopy=off,index=off,xino=off"
    )
    if any(ch in str(path) for path in (*lowers, upper, work) for ch in ",:\\\n"):
        raise BuildError("layer paths must not contain ',', ':', '\\' or newlines")
    return options


class NamespaceStepRunner:
    """The real runner: `debootstrap` and overlay + chroot steps, via util-linux `unshare`."""

    def bootstrap(
        self, base: DebootstrapBase, rootfs: Path, *, mirror: str, on_line: LineSink
    ) -> StepOutcome:
        packages = rootfs.parent / "packages.tsv"
        debootstrap = ["debootstrap", f"--variant={base.variant}", "--components=main"]
        if base.include:
            debootstrap.append(f"--include={','.join(base.include)}")
        debootstrap += [base.suite, str(rootfs), mirror]
        argv = [
            *_UNSHARE,
            "/bin/sh",
            "-c",
            _BOOTSTRAP_SCRIPT,
            "corral-bootstrap",
            str(rootfs),
            str(packages),
            _FINALIZE_BOOTSTRAP,
            *debootstrap,
        ]
        self._execute(argv, build_environment(), base.summary(), on_line)
        return StepOutcome(packages=_parse_packages(packages))

    def run(
        self,
        step: RunStep,
        *,
        lowers: Sequence[Path],
        upper: Path,
        scratch: Path,
        on_line: LineSink,
    ) -> StepOutcome:
        work, merged = scratch / "work", scratch / "merged"
        work.mkdir()
        merged.mkdir()
        resolv = scratch / "resolv.conf"
        try:
            resolv.write_bytes(Path("/etc/resolv.conf").read_bytes())
        except OSError:
            resolv.write_bytes(b"")
        packages = scratch / "packages.tsv"
        ca = _host_ca_bundle()
        env = build_environment(step.env)
        if ca:
            env.update({key: _STEP_CA_BUNDLE for key in _CA_VARIABLES})
        argv = [
            *_UNSHARE,
            "/bin/sh",
            "-c",
            _RUN_SCRIPT,
            "corral-run",
            str(merged),
            _overlay_options(lowers, upper, work),
            str(resolv),
            str(packages),
            step.command,
            ca,
            *(f"{key}={value}" for key, value in env.items()),
        ]
        self._execute(argv, build_environment(), step.summary(), on_line)
        return StepOutcome(packages=_parse_packages(packages))

    def _execute(
        self, argv: list[str], env: Mapping[str, str], summary: str, on_line: LineSink
    ) -> None:
        tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=dict(env),
                text=True,
                errors="replace",
                bufsize=1,
            )
        except OSError as exc:
            raise BuildError(f"{summary}: cannot start {argv[0]}: {exc}", step=summary) from exc
        with process:
            try:
                assert process.stdout is not None
                for raw in process.stdout:
                    line = raw.rstrip("\n")
                    tail.append(line)
                    on_line(line)
                status = process.wait()
            except BaseException:
                process.kill()  # unshare's --kill-child then takes the whole step down
                process.wait()
                raise
        if status != 0:
            raise BuildError(
                f"{summary}: failed with exit status {status}",
                step=summary,
                exit_status=status,
                log_tail=tuple(tail),
            )
