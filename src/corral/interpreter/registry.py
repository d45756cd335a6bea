"""All contexts of the server, the default one of each language, and their kernels' lives.

At start the default python context (adopting the kernel `bootstrap` spawned) and the
default javascript context exist. The javascript context's Deno kernel is spawned at its
first execution (Deno holds ~170 MiB of private memory, most sandboxes never run
JavaScript), or, if the server was asked to start it eagerly, once the python kernel is
ready (or after `JAVASCRIPT_START_DELAY`), so that it does not compete with the python
kernel for the CPU while the first `run_code` waits. Other languages get their default
context when code first names them. `list()` keeps creation order: python,
javascript, then every later context last.

Errors (each carries the text the HTTP layer sends):
`ContextNotFoundError` (404), `InvalidCwdError` (400), `UnsupportedLanguageError` (400,
from `languages`), `KernelStartError` (500, from `kernel`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from corral.interpreter.bootstrap import EarlyKernel, random_uuid
from corral.interpreter.context import Context
from corral.interpreter.kernel import (
    Kernel,
    KernelStartError,
    new_spec_manager,
    new_zmq_context,
)
from corral.interpreter.languages import language_named

__all__ = [
    "DEFAULT_CWD",
    "JAVASCRIPT_START_DELAY",
    "ContextNotFoundError",
    "ContextRegistry",
    "InvalidCwdError",
]

log = logging.getLogger(__name__)

DEFAULT_CWD = "/home/user"

JAVASCRIPT_START_DELAY = 3.0
"""Seconds after which the default javascript kernel starts even if python is not ready."""


class ContextNotFoundError(LookupError):
    """No context has this id."""

    def __init__(self, context_id: str) -> None:
        super().__init__(f"Context {context_id} not found")


class InvalidCwdError(ValueError):
    """The requested working directory does not exist."""


class ContextRegistry:
    """The contexts of this server."""

    def __init__(self, *, runtime_dir: str, default_cwd: str = DEFAULT_CWD) -> None:
        self.default_cwd = default_cwd
        self._runtime_dir = runtime_dir
        self._zmq_context = new_zmq_context()
        self._spec_manager = new_spec_manager()
        self._contexts: dict[str, Context] = {}
        self._defaults: dict[str, str] = {}
        self._defaults_lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None

    async def start(
        self, early_python: EarlyKernel | None = None, *, eager_javascript: bool = False
    ) -> None:
        """Create the default python and javascript contexts (§8.2).

        The javascript context's Deno kernel (~170 MiB) starts when code first runs in it,
        or, with `eager_javascript`, once the python kernel is ready.
        """
        python = self._add("python", self.default_cwd, early=early_python)
        self._defaults["python"] = python.id
        javascript = self._add("javascript", self.default_cwd)
        self._defaults["javascript"] = javascript.id
        try:
            await python.kernel.spawn()
        except KernelStartError:
            log.exception("the default python kernel could not be started")
        if eager_javascript:
            self._background = asyncio.ensure_future(self._start_later(python, javascript))

    async def wait_default_ready(self) -> None:
        """Wait until the default python kernel answers (errors are logged, not raised)."""
        try:
            await self._contexts[self._defaults["python"]].kernel.wait_ready()
        except (KeyError, KernelStartError) as exc:
            log.warning("default python context: %s", exc)

    async def _start_later(self, first: Context, later: Context) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(JAVASCRIPT_START_DELAY):
                await first.kernel.wait_ready()
        try:
            await later.kernel.spawn()
        except KernelStartError as exc:
            log.warning("default %s context: %s", later.language, exc)

    def list(self) -> list[Context]:
        """Every context, oldest first."""
        return list(self._contexts.values())

    def get(self, context_id: str) -> Context:
        """The context with this id, or `ContextNotFoundError`."""
        try:
            return self._contexts[context_id]
        except KeyError:
            raise ContextNotFoundError(context_id) from None

    async def create(self, language: str | None, cwd: str | None) -> Context:
        """A new context whose kernel process is started (it may still be loading)."""
        name = language_named(language).name
        context = self._add(name, self.resolve_cwd(cwd))
        try:
            await context.kernel.spawn()
        except KernelStartError:
            self._contexts.pop(context.id, None)
            raise
        return context

    async def default_for(self, language: str | None) -> Context:
        """The default context serving `language` (created on first use)."""
        name = language_named(language).default_context
        async with self._defaults_lock:
            context_id = self._defaults.get(name)
            if context_id in self._contexts:
                return self._contexts[context_id]
            context = await self.create(name, None)
            self._defaults[name] = context.id
            return context

    async def delete(self, context_id: str) -> None:
        """Shut the context's kernel down and forget it."""
        context = self.get(context_id)
        del self._contexts[context_id]
        await context.kernel.shutdown()

    async def restart(self, context_id: str) -> None:
        """Restart the context's kernel (state lost, same id); returns when it is ready."""
        await self.get(context_id).kernel.restart()

    async def close(self) -> None:
        """Shut every kernel down (server exit)."""
        if self._background is not None:
            self._background.cancel()
        contexts = list(self._contexts.values())
        self._contexts.clear()
        await asyncio.gather(
            *(context.kernel.shutdown() for context in contexts), return_exceptions=True
        )
        self._zmq_context.destroy(linger=0)

    def resolve_cwd(self, cwd: str | None) -> str:
        """An absolute, existing directory for a new context (relative to the default cwd)."""
        if not cwd:
            return self.default_cwd
        path = os.path.normpath(os.path.join(self.default_cwd, os.path.expanduser(cwd)))
        if not os.path.isdir(path):
            raise InvalidCwdError(f"cwd {cwd!r} is not an existing directory in the sandbox")
        return path

    def _add(self, language: str, cwd: str, *, early: EarlyKernel | None = None) -> Context:
        kernel_id = early.kernel_id if early is not None else random_uuid()
        kernel = Kernel(
            kernel_id=kernel_id,
            kernel_name=language_named(language).kernel,
            cwd=cwd,
            zmq_context=self._zmq_context,
            spec_manager=self._spec_manager,
            runtime_dir=self._runtime_dir,
            early=early,
        )
        context = Context(id=kernel_id, language=language, cwd=cwd, kernel=kernel)
        self._contexts[kernel_id] = context
        return context
