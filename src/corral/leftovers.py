"""`corral leftovers [--clean]`: what crashed servers left on the host, and its removal.

With the server stopped, a state/run dir pair can hold sandboxes that a restart would not
re-adopt: directories of a create that never finished, sandboxes the store does not know,
sandboxes whose agent is dead, or whose row is expired or not RUNNING; plus host mounts the
server makes while it runs (the cgroup `favordynmods` mount, the disk pool, the network
gateway's namespace, which takes its veths along when unmounted) and store rows
without a sandbox. This command lists them and, with `--clean`, removes them; `--all` counts
every sandbox, also those a restart would re-adopt (to decommission a state dir).

It decides nothing of its own: a sandbox is kept exactly when the server's start-up
reconciliation (`plan_reconciliation`) would re-adopt it, and removal is the runtime's own
`sweep` (the same `stop` a kill runs). Host mounts under the dirs are unmounted only when
no sandbox is kept (a kept sandbox's writable layer lives on the disk pool).

A server using the same state dir (a process holding its database open) makes the answer
unreliable: listing warns, `--clean` refuses.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

import click

from corral.cli_options import run_dir_option, state_dir_option
from corral.model import SandboxRecord, SandboxState
from corral.network.gateway import gateway_netns_path, uplink_ifname
from corral.orchestrator.reconcile import plan_reconciliation
from corral.runtime._linux import syscalls
from corral.runtime.namespaces import NamespacesRuntime
from corral.store import SqliteStore

__all__ = ["Leftover", "LeftoverReport", "find_leftovers", "leftovers", "servers_using"]

_DB_NAME = "corral.db"


@dataclass(frozen=True)
class Leftover:
    """One sandbox a restarted server would not re-adopt, and what of it is on the host."""

    sandbox_id: str
    why: str
    processes: tuple[int, ...]
    cgroups: tuple[Path, ...]
    dirs: tuple[Path, ...]


@dataclass(frozen=True)
class LeftoverReport:
    sandboxes: tuple[Leftover, ...]
    kept: tuple[str, ...]
    """Live sandboxes the next server start re-adopts; never touched."""
    stale_rows: tuple[str, ...]
    """Store rows whose sandbox is gone from the host."""
    mounts: tuple[Path, ...]
    """Host mounts under the state or run dir (deepest first)."""

    @property
    def empty(self) -> bool:
        return not (self.sandboxes or self.stale_rows or self.mounts)


def servers_using(state_dir: Path) -> list[int]:
    """Pids of processes holding `<state_dir>/corral.db` open (a running server)."""
    database = str((state_dir / _DB_NAME).resolve())
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{entry}/fd/{fd}")
            except OSError:
                continue
            if target == database:
                pids.append(int(entry))
                break
    return pids


async def find_leftovers(
    runtime: NamespacesRuntime, rows: list[SandboxRecord], capacity: int, *, keep: bool = True
) -> LeftoverReport:
    """Compare the host with the store's `rows` the way a server start would.

    With `keep=False` every sandbox is a leftover, even one a restart would re-adopt."""
    live = await runtime.live()
    plan = plan_reconciliation(rows, live, time.time(), capacity)
    kept = {adoption.record.sandbox_id for adoption in plan.adopt} if keep else set()
    by_id = {row.sandbox_id: row for row in rows}
    live_ids = {sandbox.sandbox_id for sandbox in live}
    on_disk = _owned_ids(runtime)
    found = []
    for sandbox_id in sorted(on_disk - kept):
        cgroup = runtime.layout.sandbox(sandbox_id)
        found.append(
            Leftover(
                sandbox_id=sandbox_id,
                why=_why(by_id.get(sandbox_id), sandbox_id in live_ids),
                processes=tuple(cgroup.pids()),
                cgroups=tuple(d for d in cgroup.dirs() if d.exists()),
                dirs=tuple(
                    d / sandbox_id
                    for d in (runtime.sandboxes_state, runtime.sandboxes_run)
                    if (d / sandbox_id).exists()
                ),
            )
        )
    stale = tuple(sorted(set(by_id) - kept - on_disk))
    return LeftoverReport(tuple(found), tuple(sorted(kept)), stale, _mounts_under(runtime))


async def clean_leftovers(
    runtime: NamespacesRuntime, report: LeftoverReport, store: SqliteStore | None
) -> None:
    """Remove what `report` lists (the runtime's sweep, then rows, then host mounts)."""
    await runtime.sweep(keep=set(report.kept))
    if store is not None:
        for sandbox_id in (*report.stale_rows, *(s.sandbox_id for s in report.sandboxes)):
            store.delete(sandbox_id)
    if not report.kept:
        for mount in report.mounts:
            syscalls.umount2(str(mount), syscalls.MNT_DETACH)


def _why(row: SandboxRecord | None, live: bool) -> str:
    if row is None:
        return "unknown to the store" + ("" if live else ", not running")
    if not live:
        return "not running (its agent is gone)"
    if row.state is not SandboxState.RUNNING:
        return f"store state {row.state.value}"
    if row.end_at <= time.time():
        return "expired"
    return "live (--all)"


def _owned_ids(runtime: NamespacesRuntime) -> set[str]:
    """What `NamespacesRuntime.sweep` considers its own: a directory in the state or run dir."""
    ids: set[str] = set()
    for d in (runtime.sandboxes_state, runtime.sandboxes_run):
        if d.is_dir():
            ids.update(p.name for p in d.iterdir())
    return ids


def _mounts_under(runtime: NamespacesRuntime) -> tuple[Path, ...]:
    roots = [str(runtime.sandboxes_state.parent), str(runtime.sandboxes_run.parent)]
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].encode().decode("unicode_escape")
            if any(point == root or point.startswith(root + "/") for root in roots):
                found.append(Path(point))
    return tuple(sorted(set(found), key=lambda p: len(p.parts), reverse=True))


def _gateway_note(mount: Path) -> str:
    """The server's network gateway namespace (`corral.network.gateway`): unmounting it frees
    the namespace, its sandbox veths and its uplink veth in the host's namespace."""
    if mount != gateway_netns_path(mount.parent.parent):
        return ""
    return f" (network gateway; its uplink veth {uplink_ifname(mount.parent.parent)} goes with it)"


def _describe(report: LeftoverReport) -> list[str]:
    lines = []
    for item in report.sandboxes:
        parts = [f"sandbox {item.sandbox_id}: {item.why}"]
        if item.processes:
            parts.append(f"processes {' '.join(map(str, item.processes))}")
        parts += [f"cgroup {d}" for d in item.cgroups]
        parts += [f"dir {d}" for d in item.dirs]
        lines.append("; ".join(parts))
    lines += [f"stale store row {sandbox_id}" for sandbox_id in report.stale_rows]
    held = " (kept: live sandboxes use them)" if report.kept else ""
    lines += [f"mount {mount}{held}{_gateway_note(mount)}" for mount in report.mounts]
    if report.kept:
        lines.append(f"kept (re-adopted at the next start): {' '.join(report.kept)}")
    return lines


async def _run(state_dir: Path, run_dir: Path, capacity: int, clean: bool, keep: bool) -> list[str]:
    database = state_dir / _DB_NAME
    store = SqliteStore(database) if database.exists() else None
    try:
        runtime = NamespacesRuntime(state_dir, run_dir)
        rows = store.all() if store else []
        report = await find_leftovers(runtime, rows, capacity, keep=keep)
        lines = _describe(report) or ["no leftovers"]
        if clean and not report.empty:
            await clean_leftovers(runtime, report, store)
            rows = store.all() if store else []
            after = await find_leftovers(runtime, rows, capacity, keep=keep)
            lines.append("cleaned" if not after.sandboxes else "NOT cleaned:")
            lines += _describe(after) if after.sandboxes else []
        return lines
    finally:
        if store is not None:
            store.close()


@click.command()
@state_dir_option
@run_dir_option
@click.option(
    "--max-sandboxes",
    type=int,
    default=1000,
    show_default=True,
    help="The server's --max-sandboxes (a sandbox beyond it is not re-adopted).",
)
@click.option("--clean", is_flag=True, help="Remove what is listed (the server must be stopped).")
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Also count live sandboxes a restart would re-adopt (decommissioning a state dir).",
)
def leftovers(
    state_dir: Path, run_dir: Path, max_sandboxes: int, clean: bool, everything: bool
) -> None:
    """List (and with --clean remove) what stopped or crashed servers left on the host."""
    if os.geteuid() != 0:
        raise click.ClickException("run as root: sandboxes belong to root and shifted uids")
    running = servers_using(state_dir)
    if running:
        message = f"a server (pid {' '.join(map(str, running))}) is using {state_dir}"
        if clean:
            raise click.ClickException(f"{message}: stop it before --clean")
        click.echo(f"warning: {message}; what it is creating or killing shows up here", err=True)
    for line in asyncio.run(_run(state_dir, run_dir, max_sandboxes, clean, not everything)):
        click.echo(line)
