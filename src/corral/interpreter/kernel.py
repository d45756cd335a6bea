"""One Jupyter kernel of a context: its process (jupyter_client's manager) and its messages.

```
Kernel
 ├─ AsyncKernelManager   start / interrupt / restart / shutdown (kernel spec from kernels/)
 │    └─ _Provisioner    LocalProvisioner that can adopt the process `bootstrap` spawned
 ├─ AsyncKernelClient    its shell + iopub sockets and session only: requests are sent and
 │                       replies received through the asyncio sockets themselves (see
 │                       `_send_shell`); one reader task per socket routes every message
 │                       by its parent msg_id to the queue of whoever listens
 └─ pidfd of the process readable when the process exits → listeners get `KernelGone`
```

Life cycle. `spawn()` starts the process; `wait_ready()` waits until the kernel answered a
`kernel_info_request` on shell *and* its iopub messages reach us (a SUB socket drops what
was published before it connected). A kernel that exits by itself after it was ready is
restarted at once in the same context (`KernelGone("died")` to the running execution;
variables are lost); one that exits while starting is not, `wait_ready()` raises
`KernelStartError`. `restart()` and `shutdown()` are requests (`KernelGone("restarted")`,
`KernelGone("deleted")`).

Errors: `KernelStartError` (the process could not start or never answered) is the only
exception callers handle; everything the kernel says arrives as `KernelMessage`s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning.local_provisioner import LocalProvisioner

from corral.interpreter.bootstrap import EarlyKernel, kernel_environment
from corral.interpreter.kernel_specs import KERNELS_DIR

__all__ = [
    "Kernel",
    "KernelEvent",
    "KernelGone",
    "KernelMessage",
    "KernelStartError",
    "START_TIMEOUT",
    "new_spec_manager",
    "new_zmq_context",
]

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0
"""Seconds a kernel may take from spawn to its first `kernel_info_reply`."""

_IOPUB_CONFIRM = 0.05
"""Seconds to wait for an iopub message after the `kernel_info_reply` before asking again."""

_HANDSHAKE_ATTEMPTS = 100


@dataclass(frozen=True)
class KernelMessage:
    """A message of the kernel on `channel` ("shell" or "iopub") about a request we sent."""

    channel: str
    msg: dict[str, Any]


@dataclass(frozen=True)
class KernelGone:
    """The kernel process a request ran in is gone (`reason`: died, restarted, deleted)."""

    reason: str
    detail: str


KernelEvent = KernelMessage | KernelGone


class KernelStartError(Exception):
    """The kernel could not be started or did not answer; the message says which and why."""


def new_zmq_context() -> zmq.asyncio.Context:
    """The ZMQ context of all kernel sockets (managers and clients): reconnect within 5 ms
    instead of 100 ms.

    A client socket usually connects before its kernel has bound its ports; the retry
    interval bounds how late after the kernel's start its first messages reach us.
    """
    context = zmq.asyncio.Context()
    context.setsockopt(zmq.RECONNECT_IVL, 5)
    context.setsockopt(zmq.LINGER, 0)
    return context


def new_spec_manager() -> KernelSpecManager:
    """A kernel spec manager that sees only the specs shipped in `kernels/`."""
    return KernelSpecManager(kernel_dirs=[str(KERNELS_DIR)], ensure_native_kernel=False)


class _Provisioner(LocalProvisioner):
    """`LocalProvisioner` whose first launch may take over an already running process."""

    adopted: EarlyKernel | None = None

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        early, self.adopted = self.adopted, None
        if early is None:
            return await super().launch_kernel(cmd, **kwargs)
        self.process = early.process
        self.pid = early.process.pid
        with contextlib.suppress(OSError):
            self.pgid = os.getpgid(early.process.pid)
        self.cwd = early.cwd
        return self.connection_info


class Kernel:
    """The kernel process of one context and the client connection to it."""

    def __init__(
        self,
        *,
        kernel_id: str,
        kernel_name: str,
        cwd: str,
        zmq_context: zmq.asyncio.Context,
        spec_manager: KernelSpecManager,
        runtime_dir: str,
        early: EarlyKernel | None = None,
    ) -> None:
        self.kernel_id = kernel_id
        self.kernel_name = kernel_name
        self.cwd = cwd
        self._manager = AsyncKernelManager(
            kernel_name=kernel_name,
            kernel_id=kernel_id,
            kernel_spec_manager=spec_manager,
            context=zmq_context,
            connection_file=os.path.join(runtime_dir, f"kernel-{kernel_id}.json"),
            cache_ports=False,
            transport="tcp",
            ip="127.0.0.1",
            shutdown_wait_time=1.0,
        )
        self._provisioner = _Provisioner(
            kernel_id=kernel_id, kernel_spec=self._manager.kernel_spec, parent=self._manager
        )
        self._manager.provisioner = self._provisioner
        self._early = early
        if early is not None:
            self._manager.load_connection_info(_connection_info(early.connection_info))
            self._provisioner.adopted = early
        self._client: AsyncKernelClient | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._listeners: dict[str, asyncio.Queue[KernelEvent]] = {}
        self._ready: asyncio.Future[None] | None = None
        self._lifecycle = asyncio.Lock()
        self._generation = 0
        self._pidfd: int | None = None
        self._exit_poller: asyncio.Task[None] | None = None
        self._ready_once = False
        self._closed = False

    # --- life cycle ---------------------------------------------------------------------

    async def spawn(self) -> None:
        """Start the kernel process (once); `KernelStartError` if it cannot be started."""
        async with self._lifecycle:
            if self._ready is not None:
                return
            if self._closed:
                raise KernelStartError("the context was deleted")
            try:
                await self._manager.start_kernel(
                    cwd=self.cwd, env=self._environment(), stdin=subprocess.DEVNULL
                )
            except Exception as exc:
                error = KernelStartError(self._start_failure(exc))
                self._ready = _failed(error)
                raise error from exc
            self._connect()
            self._watch_process()
            self._ready = _background(self._handshake())

    async def wait_ready(self) -> None:
        """Return once the kernel answers requests (starting it if needed)."""
        if self._ready is None:
            await self.spawn()
        while True:
            ready = self._ready
            assert ready is not None
            await asyncio.shield(ready)
            if ready is self._ready:
                return

    async def interrupt(self) -> None:
        """Interrupt the running code (SIGINT, or an `interrupt_request` for Deno)."""
        try:
            await self._manager.interrupt_kernel()
        except Exception:
            log.warning("could not interrupt kernel %s", self.kernel_id, exc_info=True)

    async def restart(self, reason: str = "restarted", detail: str = "") -> None:
        """Replace the process by a new one (state lost) and wait until it is ready."""
        async with self._lifecycle:
            if self._closed:
                raise KernelStartError("the context was deleted")
            if self._ready is None:
                self._ready = _background(self._first_start_during_restart())
            else:
                self._unwatch_process()
                self._notify(KernelGone(reason, detail or "the kernel was restarted"))
                self._ready = _background(self._restart_process())
            ready = self._ready
        await asyncio.shield(ready)

    async def shutdown(self) -> None:
        """Stop the process and close the sockets; the kernel cannot be used afterwards."""
        async with self._lifecycle:
            if self._closed:
                return
            self._closed = True
            self._unwatch_process()
            self._notify(KernelGone("deleted", "the context was deleted"))
            if self._ready is not None and not self._ready.done():
                self._ready.cancel()
            if self._manager.has_kernel:
                try:
                    await self._manager.shutdown_kernel(now=True)
                except Exception:
                    log.warning("shutting down kernel %s failed", self.kernel_id, exc_info=True)
            for reader in self._readers:
                reader.cancel()
            if self._client is not None:
                self._client.stop_channels()
        if self._early is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._early.connection_file)

    # --- requests -------------------------------------------------------------------------

    def execute(self, code: str, *, silent: bool = False) -> str:
        """Send an `execute_request`; returns its msg_id (see `listen`)."""
        content = {
            "code": code,
            "silent": silent,
            "store_history": not silent,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": False,
        }
        return self._send_shell("execute_request", content)

    def listen(self, msg_id: str) -> asyncio.Queue[KernelEvent]:
        """The queue that receives every message whose parent is `msg_id`, and `KernelGone`.

        Call it right after sending (before awaiting anything): messages are routed by the
        reader tasks, which only run when the caller awaits.
        """
        queue: asyncio.Queue[KernelEvent] = asyncio.Queue()
        self._listeners[msg_id] = queue
        return queue

    def stop_listening(self, msg_id: str) -> None:
        """Drop the queue of `msg_id`; later messages about it are discarded."""
        self._listeners.pop(msg_id, None)

    # --- internals ------------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        if self._early is not None:
            return dict(self._early.env)
        return kernel_environment(self.kernel_name)

    def _start_failure(self, exc: BaseException) -> str:
        if isinstance(exc, FileNotFoundError):
            return (
                f"the {self.kernel_name} kernel is not installed in this sandbox "
                f"({exc.filename or exc} not found)"
            )
        return f"the {self.kernel_name} kernel could not be started: {exc}"

    def _connect(self) -> None:
        if self._client is not None:
            return
        # The manager does not hand its context to its clients: without `context=` each
        # client would make a context of its own (an I/O thread, default socket options).
        client: AsyncKernelClient = self._manager.client(context=self._manager.context)
        client.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=False)
        self._client = client
        self._readers = [
            asyncio.ensure_future(self._read("shell", client.shell_channel)),
            asyncio.ensure_future(self._read("iopub", client.iopub_channel)),
        ]

    async def _read(self, channel_name: str, channel: AsyncZMQSocketChannel) -> None:
        # recv_multipart() directly, not channel.get_msg(): that one awaits socket.poll()
        # first, and a poll pending on the shell socket while execute() sends on it can
        # miss the socket's (edge-triggered) readiness for good under CPU load: every
        # later reply then stays unread.
        socket = channel.socket
        session = channel.session
        assert socket is not None
        while True:
            try:
                frames = await socket.recv_multipart()
            except asyncio.CancelledError:
                raise
            except zmq.ZMQError:
                return
            try:
                _, signed = session.feed_identities(frames)
                msg = session.deserialize(signed)
            except Exception:
                log.warning("unreadable %s message from kernel %s", channel_name, self.kernel_id)
                continue
            parent = msg.get("parent_header") or {}
            queue = self._listeners.get(parent.get("msg_id", ""))
            if queue is not None:
                queue.put_nowait(KernelMessage(channel_name, msg))

    def _send_shell(self, msg_type: str, content: dict[str, Any]) -> str:
        """Send a request on the shell socket through its asyncio wrapper; returns its msg_id.

        Not `Session.send` (which `AsyncKernelClient.execute` uses): it sends through a
        synchronous shadow of the socket, behind the back of the asyncio wrapper, and a
        reply that libzmq takes in during that send then never wakes our pending receive
        (the socket's file descriptor is edge-triggered). Seen under CPU load as replies
        that stop arriving for good.
        """
        assert self._client is not None, "request before spawn()"
        session = self._client.session
        socket = self._client.shell_channel.socket
        assert socket is not None
        msg = session.msg(msg_type, content)
        sent = socket.send_multipart(session.serialize(msg))
        sent.add_done_callback(self._log_send_failure)
        msg_id: str = msg["header"]["msg_id"]
        return msg_id

    def _log_send_failure(self, sent: asyncio.Future[Any]) -> None:
        if not sent.cancelled() and sent.exception() is not None:
            log.warning("kernel %s: request not sent: %s", self.kernel_id, sent.exception())

    def _notify(self, event: KernelGone) -> None:
        for queue in self._listeners.values():
            queue.put_nowait(event)

    async def _handshake(self) -> None:
        """Wait for a `kernel_info_reply` and for iopub to be connected."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        for _ in range(_HANDSHAKE_ATTEMPTS):
            assert self._client is not None
            msg_id = self._send_shell("kernel_info_request", {})
            queue = self.listen(msg_id)
            try:
                if await self._kernel_info_answered(queue, deadline):
                    break
            finally:
                self.stop_listening(msg_id)
        else:
            log.warning("kernel %s: no iopub message seen; assuming ready", self.kernel_id)
        self._ready_once = True
        if self._early is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._early.connection_file)

    async def _kernel_info_answered(
        self, queue: asyncio.Queue[KernelEvent], deadline: float
    ) -> bool:
        """True once reply and iopub both arrived; False if iopub stayed silent after the reply."""
        loop = asyncio.get_running_loop()
        replied = iopub_seen = False
        while not (replied and iopub_seen):
            timeout = _IOPUB_CONFIRM if replied else deadline - loop.time()
            try:
                async with asyncio.timeout(max(timeout, 0.0)):
                    event = await queue.get()
            except TimeoutError:
                if replied:
                    return False
                raise KernelStartError(
                    f"the {self.kernel_name} kernel did not answer within {START_TIMEOUT:.0f} s"
                ) from None
            if isinstance(event, KernelGone):
                raise KernelStartError(
                    f"the {self.kernel_name} kernel exited while starting ({event.detail})"
                )
            if event.channel == "shell":
                replied = True
            else:
                iopub_seen = True
        return True

    async def _restart_process(self) -> None:
        self._ready_once = False
        try:
            await self._manager.restart_kernel(now=True)
        except Exception as exc:
            raise KernelStartError(self._start_failure(exc)) from exc
        self._connect()
        self._watch_process()
        await self._handshake()

    async def _first_start_during_restart(self) -> None:
        try:
            await self._manager.start_kernel(
                cwd=self.cwd, env=self._environment(), stdin=subprocess.DEVNULL
            )
        except Exception as exc:
            raise KernelStartError(self._start_failure(exc)) from exc
        self._connect()
        self._watch_process()
        await self._handshake()

    def _watch_process(self) -> None:
        """Call `_exited` as soon as the current process exits (pidfd; polling if unavailable)."""
        self._unwatch_process()
        process = self._provisioner.process
        if process is None:
            return
        self._generation += 1
        generation = self._generation
        loop = asyncio.get_running_loop()
        try:
            pidfd = os.pidfd_open(process.pid)
        except OSError:
            self._exit_poller = asyncio.ensure_future(self._poll_exit(process, generation))
            return
        self._pidfd = pidfd
        loop.add_reader(pidfd, self._exited, process, generation)

    def _unwatch_process(self) -> None:
        self._generation += 1
        if self._pidfd is not None:
            asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        if self._exit_poller is not None:
            self._exit_poller.cancel()
            self._exit_poller = None

    async def _poll_exit(self, process: subprocess.Popen[bytes], generation: int) -> None:
        while process.poll() is None:
            await asyncio.sleep(0.1)
        self._exited(process, generation)

    def _exited(self, process: subprocess.Popen[bytes], generation: int) -> None:
        if generation != self._generation or self._closed:
            return
        self._unwatch_process()
        status = process.poll()
        detail = _exit_description(status)
        log.warning("kernel %s (%s) %s", self.kernel_id, self.kernel_name, detail)
        self._notify(KernelGone("died", detail))
        if self._ready_once:
            self._ready = _background(self._recover(self._generation))

    async def _recover(self, generation: int) -> None:
        async with self._lifecycle:
            if self._closed:
                raise KernelStartError("the context was deleted")
            if generation != self._generation:
                return  # restarted on request meanwhile
            await self._restart_process()


def _connection_info(raw: dict[str, int | str]) -> KernelConnectionInfo:
    """`bootstrap`'s connection parameters in jupyter_client's type."""
    return {
        "shell_port": int(raw["shell_port"]),
        "iopub_port": int(raw["iopub_port"]),
        "stdin_port": int(raw["stdin_port"]),
        "control_port": int(raw["control_port"]),
        "hb_port": int(raw["hb_port"]),
        "ip": str(raw["ip"]),
        "key": str(raw["key"]),
        "transport": str(raw["transport"]),
        "signature_scheme": str(raw["signature_scheme"]),
        "kernel_name": str(raw["kernel_name"]),
    }


def _exit_description(status: int | None) -> str:
    if status is None:
        return "exited"
    if status < 0:
        return f"was killed by signal {-status}"
    return f"exited with code {status}"


def _background(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """A task whose failure is re-raised to whoever awaits it, and never logged as lost."""
    task = asyncio.ensure_future(coroutine)
    task.add_done_callback(_retrieve_exception)
    return task


def _retrieve_exception(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


def _failed(exc: BaseException) -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    future.exception()  # mark retrieved: the error is re-raised to each waiter
    return future
