"""`Orchestrator`: the lifecycle of every sandbox (create, connect, kill, timeouts, restart).

Invariants:
- A sandbox is visible to clients (API and data plane) iff it is in the in-memory
  `LiveIndex`. Removal from the index happens first and synchronously, so a killed or expired
  sandbox disappears everywhere at once; the runtime teardown follows.
- The store is write-through: every index change is persisted before the call returns.
  Rows go STARTING -> RUNNING -> STOPPING -> deleted; a crash at any point is repaired by
  `reconcile()` at the next start.
- A uid slot is released only after the runtime confirmed the stop; a sandbox whose stop
  failed keeps its slot (quarantined) so no new sandbox can share its uid range.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

from corral.model import (
    EgressPolicy,
    SandboxRecord,
    SandboxSpec,
    SandboxState,
    new_access_token,
    new_sandbox_id,
)
from corral.network.connection_log import ConnectionLog
from corral.network.gateway import Gateway, GatewayError
from corral.network.services import NetworkServices
from corral.orchestrator.commands import CreateSandbox, SandboxPage, SandboxQuery
from corral.orchestrator.deadlines import DeadlineScheduler
from corral.orchestrator.errors import (
    CapacityExceeded,
    SandboxNotFound,
    SandboxStartFailed,
    ShuttingDown,
)
from corral.orchestrator.index import LiveIndex, SandboxRoute
from corral.orchestrator.limits import resolve_limits
from corral.orchestrator.listing import select_page
from corral.orchestrator.reconcile import ReconcileReport, plan_reconciliation
from corral.orchestrator.settings import OrchestratorSettings
from corral.orchestrator.slots import UidSlots, uid_base_of_slot
from corral.orchestrator.start_wait import StartCommandNotReady, wait_for_start_command
from corral.orchestrator.telemetry import Telemetry
from corral.orchestrator.templates import TemplateCatalog
from corral.orchestrator.validation import check_env_vars, check_metadata, check_timeout
from corral.runtime import LiveSandbox, Runtime, RuntimeError_
from corral.store import Store, StoreError

__all__ = ["Orchestrator"]

log = logging.getLogger("corral.orchestrator")

RemovalListener = Callable[[str], None]

_CLOSE_WAIT_FOR_STARTS = 30.0


class Orchestrator:
    """Owns the runtime, the store, the live index, uid slots and deadlines."""

    def __init__(
        self,
        runtime: Runtime,
        store: Store,
        templates: TemplateCatalog,
        settings: OrchestratorSettings | None = None,
        clock: Callable[[], float] = time.time,
        gateway: Gateway | None = None,
    ) -> None:
        self._runtime = runtime
        self._gateway = gateway
        self._store = store
        self._templates = templates
        self._settings = settings or OrchestratorSettings()
        self._clock = clock
        self._index = LiveIndex()
        self._slots = UidSlots(self._settings.max_sandboxes)
        self._deadlines = DeadlineScheduler(self._on_deadline, clock)
        self._starting: set[str] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._removal_listeners: list[RemovalListener] = []
        self._closing = False
        self._telemetry = Telemetry(
            runtime, store, interval=self._settings.metrics_interval, clock=clock
        )
        self.add_removal_listener(self._telemetry.forget)
        self._connection_log = ConnectionLog(store, clock=clock)
        self._network_services = (
            None if gateway is None else NetworkServices(gateway, self._connection_log)
        )
        if self._network_services is not None:
            self.add_removal_listener(self._network_services.forget)

    @property
    def settings(self) -> OrchestratorSettings:
        return self._settings

    @property
    def gateway(self) -> Gateway | None:
        """The sandboxes' network gateway; None: sandboxes have only `lo`."""
        return self._gateway

    @property
    def connection_log(self) -> ConnectionLog:
        """Every connection attempt of sandboxes (resolver, proxy, firewall verdicts)."""
        return self._connection_log

    @property
    def telemetry(self) -> Telemetry:
        """Metrics and limit events of sandboxes."""
        return self._telemetry

    # -- lifecycle of the orchestrator itself ----------------------------------------------

    async def start(self) -> ReconcileReport:
        """Open the runtime and reconcile it with the store (see `reconcile`)."""
        self._runtime.on_exit(self._on_sandbox_died)
        if self._gateway is not None:
            await self._gateway.open()
        try:
            if self._network_services is not None:
                await self._network_services.start()
            await self._runtime.open()
        except BaseException:
            if self._network_services is not None:
                await self._network_services.close()
            if self._gateway is not None:
                await self._gateway.close()
            raise
        report = await self.reconcile()
        self._telemetry.open()
        return report

    async def close(self) -> None:
        """Stop every sandbox (waiting for creations in flight), then close the runtime."""
        self._closing = True
        await self._telemetry.close()
        deadline = time.monotonic() + _CLOSE_WAIT_FOR_STARTS
        while self._starting and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self._deadlines.cancel_all()
        ids = self._index.ids()
        await asyncio.gather(*(self._kill_nowait_missing(i) for i in ids))
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if ids:
            log.info("stopped %d sandbox(es) at shutdown", len(ids))
        await self._runtime.close()
        if self._network_services is not None:
            await self._network_services.close()
        self._connection_log.close()
        if self._gateway is not None:
            await self._gateway.close()

    async def reconcile(self) -> ReconcileReport:
        """Re-adopt sandboxes that survived a server crash; remove everything else."""
        now = self._clock()
        plan = plan_reconciliation(
            self._store.all(), await self._runtime.live(), now, self._settings.max_sandboxes
        )
        for adoption in plan.adopt:
            record = replace(adoption.record, agent_pid=adoption.sandbox.init_pid)
            if record != adoption.record:
                self._store.update(record)
            self._slots.claim(adoption.slot)
            self._index.add(record, adoption.sandbox.agent_socket, adoption.slot)
            self._deadlines.set(record.sandbox_id, record.end_at)
            self._telemetry.track(record.sandbox_id, record.limits, record.started_at, adopted=True)
            if self._gateway is not None:
                try:
                    await self._gateway.attach(record.sandbox_id, adoption.slot, record.network)
                except GatewayError:
                    log.exception("reconcile: no network policy for sandbox %s", record.sandbox_id)
        stopped: list[str] = []
        for sandbox_id in plan.stop:
            try:
                await self._runtime.stop(sandbox_id)
                stopped.append(sandbox_id)
            except Exception:
                log.exception("reconcile: could not stop sandbox %s", sandbox_id)
        adopted = tuple(a.record.sandbox_id for a in plan.adopt)
        swept = await self._runtime.sweep(set(adopted))
        if self._gateway is not None:
            await self._gateway.sweep()
        for sandbox_id in plan.delete_rows:
            self._store.delete(sandbox_id)
        report = ReconcileReport(adopted, tuple(stopped), plan.delete_rows, tuple(swept))
        log.info("%s", report.summary())
        return report

    # -- commands ------------------------------------------------------------------------

    async def create(self, command: CreateSandbox) -> SandboxRecord:
        """Start a sandbox; returns once its agent accepts connections."""
        settings = self._settings
        if self._closing:
            raise ShuttingDown("the server is shutting down")
        timeout = (
            settings.default_timeout
            if command.timeout is None
            else check_timeout("timeout", command.timeout, settings)
        )
        check_metadata(command.metadata, settings)
        check_env_vars(command.env_vars, settings)
        template = self._templates.load(command.template)
        limits = resolve_limits(command.limits, template.limits, settings.limits)
        slot = self._slots.allocate_nowait()
        if slot is None:
            raise CapacityExceeded(
                f"the server already runs its maximum of {settings.max_sandboxes} sandboxes"
            )
        sandbox_id = self._unused_sandbox_id()
        now = self._clock()
        record = SandboxRecord(
            sandbox_id=sandbox_id,
            template_id=template.template_id,
            alias=template.alias,
            state=SandboxState.STARTING,
            access_token=new_access_token(),
            uid_base=uid_base_of_slot(slot),
            started_at=now,
            end_at=now + timeout,
            limits=limits,
            env_vars=dict(command.env_vars),
            metadata=dict(command.metadata),
            traffic_access_token=None if command.allow_public_traffic else new_access_token(),
            network=command.network,
        )
        spec = SandboxSpec(
            sandbox_id=sandbox_id,
            template=template,
            access_token=record.access_token,
            uid_base=record.uid_base,
            limits=record.limits,
            env_vars=record.env_vars,
        )
        self._starting.add(sandbox_id)
        try:
            try:
                self._store.insert(record)
            except BaseException:
                self._slots.release(slot)
                raise
            try:
                live = await self._start_with_network(spec, slot, record.network)
                await self._wait_for_start_command(spec, live)
            except BaseException as exc:
                if self._gateway is not None:
                    await asyncio.shield(self._gateway.detach(sandbox_id))
                self._forget_failed_start(sandbox_id, slot)
                if isinstance(exc, (RuntimeError_, StartCommandNotReady)):
                    log.warning("sandbox %s failed to start: %s", sandbox_id, exc)
                    raise SandboxStartFailed(f"sandbox could not be started: {exc}") from exc
                if isinstance(exc, Exception):
                    log.exception("sandbox %s failed to start", sandbox_id)
                    raise SandboxStartFailed("sandbox could not be started") from exc
                raise
            record = replace(
                record,
                state=SandboxState.RUNNING,
                agent_pid=live.init_pid,
                end_at=max(record.end_at, self._clock() + timeout),
            )
            try:
                self._store.update(record)
            except BaseException:
                await asyncio.shield(self._runtime.stop(sandbox_id))
                if self._gateway is not None:
                    await asyncio.shield(self._gateway.detach(sandbox_id))
                self._forget_failed_start(sandbox_id, slot)
                raise
            self._index.add(record, live.agent_socket, slot)
        finally:
            self._starting.discard(sandbox_id)
        if self._closing:
            await self._kill_nowait_missing(sandbox_id)
            raise ShuttingDown("the server is shutting down")
        self._deadlines.set(sandbox_id, record.end_at)
        self._telemetry.track(sandbox_id, record.limits, record.started_at)
        log.debug("sandbox %s started from template %s", sandbox_id, template.template_id)
        return record

    async def _start_with_network(
        self, spec: SandboxSpec, slot: int, policy: EgressPolicy
    ) -> LiveSandbox:
        """Start the sandbox while the gateway installs its policy (one nftables transaction):
        both finish before create returns. The caller detaches the network on failure.

        The start is scheduled first: its request reaches the launcher before the policy's
        transaction begins, so the longer of the two is not delayed by the shorter.
        """
        if self._gateway is None:
            return await self._runtime.start(spec)
        spec = replace(spec, network=self._gateway.network_of_slot(slot))
        starting = asyncio.ensure_future(self._runtime.start(spec))
        attaching = asyncio.ensure_future(self._gateway.attach(spec.sandbox_id, slot, policy))
        try:
            live = await starting
        except BaseException:
            await asyncio.wait([attaching])
            if not attaching.cancelled():
                attaching.exception()  # the start failure is the one to report
            raise
        try:
            await attaching
        except BaseException:
            await asyncio.shield(self._runtime.stop(spec.sandbox_id))
            raise
        return live

    async def _wait_for_start_command(self, spec: SandboxSpec, live: LiveSandbox) -> None:
        """Until the template's start command listens on its ready port; a start command
        that never will takes the sandbox down (`StartCommandNotReady`)."""
        if not spec.template.start_command or not spec.template.ready_port:
            return
        try:
            await wait_for_start_command(
                live.agent_socket, spec.access_token, self._settings.start_command_timeout
            )
        except BaseException:
            await asyncio.shield(self._runtime.stop(spec.sandbox_id))
            raise

    def connect(self, sandbox_id: str, timeout: float | None = None) -> SandboxRecord:
        """Extend a running sandbox: `end_at = max(end_at, now + timeout)`."""
        record = self.get(sandbox_id)
        seconds = (
            self._settings.default_timeout
            if timeout is None
            else check_timeout("timeout", timeout, self._settings)
        )
        end_at = self._clock() + seconds
        if end_at <= record.end_at:
            return record
        return self._move_deadline(record, end_at)

    def set_timeout(self, sandbox_id: str, timeout: float) -> SandboxRecord:
        """`end_at = now + timeout` (may shorten or extend)."""
        record = self.get(sandbox_id)
        seconds = check_timeout("timeout", timeout, self._settings)
        return self._move_deadline(record, self._clock() + seconds)

    def get(self, sandbox_id: str) -> SandboxRecord:
        record = self._index.record(sandbox_id)
        if record is None:
            raise SandboxNotFound(sandbox_id)
        return record

    def list(self, query: SandboxQuery) -> SandboxPage:
        return select_page(self._index.records(), query)

    async def set_network(self, sandbox_id: str, policy: EgressPolicy) -> SandboxRecord:
        """Replace a running sandbox's egress policy; in force when this returns."""
        self.get(sandbox_id)
        if self._gateway is not None:
            await self._gateway.apply(sandbox_id, policy)
        current = self._index.record(sandbox_id)  # it may have gone meanwhile
        if current is None:
            raise SandboxNotFound(sandbox_id)
        updated = replace(current, network=policy)
        self._store.update(updated)
        self._index.replace_record(updated)
        return updated

    async def kill(self, sandbox_id: str) -> None:
        """Kill a running sandbox. It vanishes at once; teardown finishes before returning.

        Raises `SandboxNotFound` if no running sandbox has that id (so a second kill of the
        same id is a harmless 404). Cancelling the caller does not interrupt the teardown.
        """
        task = self._begin_removal(sandbox_id)
        if task is None:
            raise SandboxNotFound(sandbox_id)
        await asyncio.shield(task)

    # -- data-plane directory (structurally `corral.router.SandboxDirectory`) --------------

    def find_route(self, sandbox_id: str) -> SandboxRoute | None:
        """The agent route of a running sandbox, or None. O(1); used per request."""
        return self._index.route(sandbox_id)

    def routes(self) -> Iterator[SandboxRoute]:
        """Routes of every running sandbox (signed-URL matching)."""
        return self._index.routes()

    def add_removal_listener(self, listener: RemovalListener) -> None:
        """Call `listener(sandbox_id)` synchronously whenever a sandbox leaves the index."""
        self._removal_listeners.append(listener)

    # -- internals -----------------------------------------------------------------------

    def _unused_sandbox_id(self) -> str:
        while True:
            sandbox_id = new_sandbox_id()
            if sandbox_id not in self._index and sandbox_id not in self._starting:
                return sandbox_id

    def _forget_failed_start(self, sandbox_id: str, slot: int) -> None:
        self._slots.release(slot)
        try:
            self._store.delete(sandbox_id)
        except StoreError:
            log.exception("could not delete the row of failed sandbox %s", sandbox_id)

    def _move_deadline(self, record: SandboxRecord, end_at: float) -> SandboxRecord:
        updated = replace(record, end_at=end_at)
        self._store.update(updated)
        self._index.replace_record(updated)
        self._deadlines.set(record.sandbox_id, end_at)
        return updated

    def _on_sandbox_died(self, sandbox_id: str) -> None:
        """The runtime saw the sandbox's init exit by itself: the sandbox is gone."""
        if self._begin_removal(sandbox_id) is not None:
            log.warning("sandbox %s died (its init exited); removed", sandbox_id)

    def _on_deadline(self, sandbox_id: str) -> None:
        if self._begin_removal(sandbox_id) is not None:
            log.info("sandbox %s reached its timeout and was killed", sandbox_id)

    async def _kill_nowait_missing(self, sandbox_id: str) -> None:
        task = self._begin_removal(sandbox_id)
        if task is not None:
            await task

    def _begin_removal(self, sandbox_id: str) -> asyncio.Task[None] | None:
        """Drop the sandbox from the index now and start its teardown as a task."""
        popped = self._index.pop(sandbox_id)
        if popped is None:
            return None
        record, slot = popped
        self._deadlines.cancel(sandbox_id)
        for listener in self._removal_listeners:
            try:
                listener(sandbox_id)
            except Exception:
                log.exception("removal listener failed for sandbox %s", sandbox_id)
        task = asyncio.get_running_loop().create_task(self._teardown(record, slot))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _teardown(self, record: SandboxRecord, slot: int) -> None:
        sandbox_id = record.sandbox_id
        try:
            self._store.update(replace(record, state=SandboxState.STOPPING))
        except StoreError:
            log.exception("could not mark sandbox %s as stopping", sandbox_id)
        try:
            await self._runtime.stop(sandbox_id)
        except Exception:
            log.exception(
                "could not stop sandbox %s; its uid slot stays reserved until restart", sandbox_id
            )
            return
        if self._gateway is not None:
            try:
                await self._gateway.detach(sandbox_id)
            except Exception:
                log.exception("could not remove the network of sandbox %s", sandbox_id)
        self._slots.release(slot)
        try:
            self._store.delete(sandbox_id)
        except StoreError:
            log.exception("could not delete the row of sandbox %s", sandbox_id)
