"""One `POST /execute`: run code in a context's kernel and turn its messages into output lines.

```
HTTP endpoint: reads `lines` (bytes; None = no more), calls abandon() if the client leaves
Execution task: context lock → kernel ready → [silent env set] → execute_request
    → iopub/shell messages of that request → lines → end_of_execution
    → [silent env restore] → lock released
```

The task, not the HTTP handler, owns the context's lock, so a client that disconnects
cannot leave the context locked: `abandon()` makes the task interrupt the kernel, wait for
it to go idle (interrupting again after 2 s and restarting the kernel after 10 s if it
will not stop), restore env vars and only then release the lock. An execution abandoned
while it still waited for the lock or the kernel never runs.

A request is complete when its `status: idle` and its `execute_reply` both arrived (for
Deno, plus a short silence: see `LATE_OUTPUT_GRACE`). The first error (iopub `error`, or
an `execute_reply` with status error) is reported, others are not. If the kernel process
dies meanwhile, the execution ends with an error line naming what happened (`KernelDied`,
`ContextRestarted`, `ContextDeleted`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from corral.interpreter.context import Context
from corral.interpreter.env_code import restore_code, set_code
from corral.interpreter.kernel import (
    Kernel,
    KernelEvent,
    KernelGone,
    KernelMessage,
    KernelStartError,
)
from corral.interpreter.outputs import (
    END_OF_EXECUTION,
    Line,
    encode_line,
    error_line,
    number_of_executions_line,
    result_line,
    stream_line,
)

__all__ = ["Execution", "gone_error_line"]

log = logging.getLogger(__name__)

INTERRUPT_AGAIN_AFTER = 2.0
"""Seconds an abandoned execution may keep running after an interrupt before a second one."""

RESTART_AFTER = 10.0
"""Seconds after the first interrupt before the kernel is restarted (state lost)."""

REPLY_GRACE = 1.0
"""Seconds to wait for an `execute_reply` once the request's `status: idle` arrived."""

LATE_OUTPUT_GRACE: dict[str, float] = {"deno": 0.03}
"""Per kernel: seconds of silence to wait for after a request is complete before ending it.

Deno publishes `status: idle` before the cell's last outputs in ~3 % of executions (its
`execute_result` or `stream` then follows < 1 ms later, measured over 400 cells with and
without CPU load); other kernels keep Jupyter's order (outputs, then idle).
"""


class _Abandoned:
    """Queue marker: the client went away."""


_ABANDONED: Final = _Abandoned()


class Execution:
    """One running `/execute` request; read `lines` until None."""

    def __init__(self, context: Context, code: str, env_vars: dict[str, str]) -> None:
        self.lines: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._context = context
        self._code = code
        self._env_vars = env_vars
        self._abandoned = False
        self._finished = False
        self._queue: asyncio.Queue[KernelEvent | _Abandoned] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the execution task (lines begin to arrive once the lock and kernel are ours)."""
        self._task = asyncio.ensure_future(self._run())

    def abandon(self) -> None:
        """The client is gone: stop the code (interrupt), tidy up, emit nothing more."""
        if self._abandoned or self._finished:
            return
        self._abandoned = True
        self.lines.put_nowait(None)
        if self._queue is not None:
            self._queue.put_nowait(_ABANDONED)

    # --- the task -------------------------------------------------------------------------

    async def _run(self) -> None:
        context = self._context
        try:
            async with context.lock:
                if self._abandoned:
                    return
                try:
                    await context.kernel.wait_ready()
                except KernelStartError as exc:
                    self._emit(error_line("KernelStartFailed", str(exc), ""))
                    return
                if not self._abandoned:
                    await self._execute(context.kernel)
        except Exception:
            log.exception("execution in context %s failed", context.id)
            self._emit(
                error_line("InterpreterError", "the code interpreter failed; see its log", "")
            )
        finally:
            self._finish()

    async def _execute(self, kernel: Kernel) -> None:
        kernel_name = kernel.kernel_name
        if self._env_vars:
            kernel.execute(set_code(kernel_name, self._env_vars), silent=True)
        msg_id = kernel.execute(self._code)
        queue: asyncio.Queue[Any] = kernel.listen(msg_id)
        self._queue = queue
        if self._abandoned:
            queue.put_nowait(_ABANDONED)
        try:
            gone = await self._collect(queue)
        finally:
            self._queue = None
            kernel.stop_listening(msg_id)
        if gone is None and self._env_vars:
            kernel.execute(restore_code(kernel_name), silent=True)

    async def _collect(self, queue: asyncio.Queue[Any]) -> KernelGone | None:
        """Turn the request's messages into lines until it is complete or the kernel is gone."""
        state = _RequestState()
        loop = asyncio.get_running_loop()
        grace = LATE_OUTPUT_GRACE.get(self._context.kernel.kernel_name, 0.0)
        interrupted_at: float | None = None
        while not (state.complete and (grace <= 0 or self._abandoned)):
            timeout = None
            if interrupted_at is not None:
                elapsed = loop.time() - interrupted_at
                next_step = (
                    INTERRUPT_AGAIN_AFTER if elapsed < INTERRUPT_AGAIN_AFTER else RESTART_AFTER
                )
                timeout = next_step - elapsed
            elif state.complete:
                timeout = grace
            elif state.idle:
                timeout = REPLY_GRACE
            try:
                async with asyncio.timeout(None if timeout is None else max(timeout, 0.0)):
                    event = await queue.get()
            except TimeoutError:
                if interrupted_at is None:
                    return None  # quiet after completion, or idle and never a reply
                if loop.time() - interrupted_at < RESTART_AFTER:
                    await self._context.kernel.interrupt()
                    continue
                return await self._restart_stuck_kernel()
            if isinstance(event, _Abandoned):
                if interrupted_at is None:
                    interrupted_at = loop.time()
                    await self._context.kernel.interrupt()
                continue
            if isinstance(event, KernelGone):
                self._emit(gone_error_line(event, self._context))
                return event
            self._handle(event, state)
        return None

    async def _restart_stuck_kernel(self) -> KernelGone:
        context = self._context
        log.warning("context %s did not stop after interrupts; restarting it", context.id)
        detail = "an abandoned execution did not stop after interrupts"
        try:
            await context.kernel.restart("died", detail)
        except KernelStartError:
            log.warning("restarting context %s failed", context.id, exc_info=True)
        return KernelGone("died", detail)

    def _handle(self, event: KernelMessage, state: _RequestState) -> None:
        msg = event.msg
        msg_type = msg.get("msg_type") or msg.get("header", {}).get("msg_type")
        content: dict[str, Any] = msg.get("content") or {}
        if event.channel == "shell":
            if msg_type == "execute_reply":
                state.replied = True
                self._count(content.get("execution_count"), state)
                if content.get("status") == "error":
                    self._error(content, state)
            return
        if msg_type == "status":
            state.idle = content.get("execution_state") == "idle"
        elif msg_type == "execute_input":
            self._count(content.get("execution_count"), state)
        elif msg_type == "stream":
            self._emit(stream_line(str(content.get("name")), str(content.get("text", ""))))
        elif msg_type == "execute_result":
            self._count(content.get("execution_count"), state)
            self._emit(result_line(content.get("data") or {}, is_main_result=True))
        elif msg_type == "display_data":
            self._emit(result_line(content.get("data") or {}, is_main_result=False))
        elif msg_type == "error":
            self._error(content, state)

    def _count(self, execution_count: object, state: _RequestState) -> None:
        if state.counted or not isinstance(execution_count, int):
            return
        state.counted = True
        self._emit(number_of_executions_line(execution_count))

    def _error(self, content: dict[str, Any], state: _RequestState) -> None:
        if state.errored:
            return
        state.errored = True
        self._emit(
            error_line(content.get("ename"), content.get("evalue"), content.get("traceback"))
        )

    def _emit(self, line: Line) -> None:
        if not self._abandoned and not self._finished:
            self.lines.put_nowait(encode_line(line))

    def _finish(self) -> None:
        if self._finished:
            return
        if not self._abandoned:
            self.lines.put_nowait(END_OF_EXECUTION)
            self.lines.put_nowait(None)
        self._finished = True


class _RequestState:
    """What arrived so far for the user's `execute_request`."""

    def __init__(self) -> None:
        self.idle = False
        self.replied = False
        self.counted = False
        self.errored = False

    @property
    def complete(self) -> bool:
        return self.idle and self.replied


def gone_error_line(event: KernelGone, context: Context) -> Line:
    """The error line of an execution whose kernel process went away."""
    if event.reason == "restarted":
        return error_line(
            "ContextRestarted",
            f"The context was restarted while this code ran ({event.detail}); "
            "its state (variables, imports) was lost.",
            "",
        )
    if event.reason == "deleted":
        return error_line("ContextDeleted", "The context was deleted while this code ran.", "")
    return error_line(
        "KernelDied",
        f"The {context.language} kernel of context {context.id} {event.detail} while "
        "running this code, and its state (variables, imports) was lost. The context was "
        "restarted with a fresh kernel and accepts new code.",
        "",
    )
