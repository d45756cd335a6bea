"""One async interface over the sync and async `e2b-code-interpreter` clients, for the e2e tests.

`test_code_interpreter.py` runs every behaviour against both official clients:

* `SyncInterpreter` wraps the blocking `Sandbox`; each call runs in a worker thread
  (`asyncio.to_thread`), so two calls overlap exactly as they would from two threads, and the
  SDK invokes the callbacks on that thread.
* `AsyncInterpreter` wraps `AsyncSandbox` and turns each `on_*` callback into a coroutine
  function, the kind the async client awaits.

Both apply `RUN_TIMEOUT` unless the test passes `timeout=`, so a hung execution fails its test
instead of the whole run. `Recorder` collects callback arguments with the monotonic time of
arrival (thread-safe through the GIL's atomic `list.append`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from e2b import NotFoundException
from e2b_code_interpreter import AsyncSandbox, Sandbox  # type: ignore[import-untyped]

__all__ = [
    "CALLBACK_NAMES",
    "RUN_TIMEOUT",
    "TEMPLATE",
    "AsyncInterpreter",
    "ClientKind",
    "Interpreter",
    "Recorder",
    "SyncInterpreter",
    "column_lists",
    "create_interpreter",
    "fresh_context",
    "main_result",
    "run_ok",
]

TEMPLATE = "code-interpreter-v1"
RUN_TIMEOUT = 60.0
"""Seconds an execution may take in these tests unless the test says otherwise."""
CALLBACK_NAMES = ("on_stdout", "on_stderr", "on_result", "on_error")

ClientKind = Literal["sync", "async"]


class Interpreter(Protocol):
    """The code-interpreter calls of one sandbox, awaitable whichever client is underneath."""

    kind: ClientKind
    sandbox: Any

    async def run_code(self, code: str, **kwargs: Any) -> Any: ...

    async def create_code_context(self, **kwargs: Any) -> Any: ...

    async def list_code_contexts(self) -> list[Any]: ...

    async def restart_code_context(self, context: Any) -> None: ...

    async def remove_code_context(self, context: Any) -> None: ...

    async def kill(self) -> None: ...


class SyncInterpreter:
    """`e2b_code_interpreter.Sandbox`, each call in a worker thread."""

    kind: ClientKind = "sync"

    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox

    async def run_code(self, code: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", RUN_TIMEOUT)
        return await _in_thread(self.sandbox.run_code, code, **kwargs)

    async def create_code_context(self, **kwargs: Any) -> Any:
        return await _in_thread(self.sandbox.create_code_context, **kwargs)

    async def list_code_contexts(self) -> list[Any]:
        contexts: list[Any] = await _in_thread(self.sandbox.list_code_contexts)
        return contexts

    async def restart_code_context(self, context: Any) -> None:
        await _in_thread(self.sandbox.restart_code_context, context)

    async def remove_code_context(self, context: Any) -> None:
        await _in_thread(self.sandbox.remove_code_context, context)

    async def kill(self) -> None:
        await _in_thread(self.sandbox.kill)


class AsyncInterpreter:
    """`e2b_code_interpreter.AsyncSandbox`, with coroutine callbacks."""

    kind: ClientKind = "async"

    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox

    async def run_code(self, code: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", RUN_TIMEOUT)
        for name in CALLBACK_NAMES:
            if kwargs.get(name) is not None:
                kwargs[name] = _as_coroutine_function(kwargs[name])
        return await self.sandbox.run_code(code, **kwargs)

    async def create_code_context(self, **kwargs: Any) -> Any:
        return await self.sandbox.create_code_context(**kwargs)

    async def list_code_contexts(self) -> list[Any]:
        contexts: list[Any] = await self.sandbox.list_code_contexts()
        return contexts

    async def restart_code_context(self, context: Any) -> None:
        await self.sandbox.restart_code_context(context)

    async def remove_code_context(self, context: Any) -> None:
        await self.sandbox.remove_code_context(context)

    async def kill(self) -> None:
        await self.sandbox.kill()


async def _in_thread(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(functools.partial(call, *args, **kwargs))


def _as_coroutine_function(callback: Callable[[Any], object]) -> Callable[[Any], Any]:
    async def awaited(item: Any) -> None:
        callback(item)

    return awaited


async def create_interpreter(kind: ClientKind, **create_kwargs: Any) -> Interpreter:
    """A new `code-interpreter-v1` sandbox made with the `kind` client (the default template)."""
    if kind == "sync":
        return SyncInterpreter(await _in_thread(Sandbox.create, **create_kwargs))
    return AsyncInterpreter(await AsyncSandbox.create(**create_kwargs))


@contextlib.asynccontextmanager
async def fresh_context(interp: Interpreter, **create_kwargs: Any) -> AsyncIterator[Any]:
    """A new context (a new kernel) for one test, removed afterwards unless the test did."""
    context = await interp.create_code_context(**create_kwargs)
    try:
        yield context
    finally:
        with contextlib.suppress(NotFoundException):
            await interp.remove_code_context(context)


async def run_ok(interp: Interpreter, code: str, **kwargs: Any) -> Any:
    """`run_code`, asserting that the execution reported no error."""
    execution = await interp.run_code(code, **kwargs)
    error = execution.error
    assert error is None, (
        f"{interp.kind} client: {code!r} failed: {error.name}: {error.value}\n{error.traceback}"
    )
    return execution


def main_result(execution: Any) -> Any:
    """The execution's single main result (the value of the cell's last expression)."""
    mains = [result for result in execution.results if result.is_main_result]
    assert len(mains) == 1, f"expected one main result, got {execution.results}"
    return mains[0]


def column_lists(data: dict[str, Any]) -> dict[str, list[Any]]:
    """A column-oriented DataFrame dict as {column: values}: accepts lists or {index: value}."""
    return {
        column: list(values.values()) if isinstance(values, dict) else list(values)
        for column, values in data.items()
    }


@dataclass
class Recorder:
    """Callback arguments in arrival order, each with the monotonic time it arrived."""

    events: list[tuple[str, Any, float]] = field(default_factory=list)

    def callback(self, label: str) -> Callable[[Any], None]:
        def record(item: Any) -> None:
            self.events.append((label, item, time.monotonic()))

        return record

    def items(self, label: str) -> list[Any]:
        return [item for event_label, item, _ in self.events if event_label == label]
