"""Wiring: the only place that picks concrete backends and joins the layers.

`CorralApp` is the top-level ASGI app served by `corral serve`:

    request ──> DataPlaneRouter ──(E2b-Sandbox-Id header, or signed /files)──> agent socket
                      └──(everything else)──> control plane (corral.api, Starlette)

Lifespan: start-up opens the runtime and reconciles it with the store (re-adopting
sandboxes that survived a crash, removing the rest); shutdown (SIGTERM/SIGINT, via uvicorn)
stops every sandbox, then closes the runtime and the store.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from corral import templates
from corral.api import build_control_plane
from corral.config import ServerConfig
from corral.model import TemplateRef
from corral.network.gateway import Gateway
from corral.orchestrator import LimitPolicy, Orchestrator, OrchestratorSettings, TemplateNotFound
from corral.router import DataPlaneRouter
from corral.router.asgi import Receive, Scope, Send
from corral.router.websocket import upgrade_protocol
from corral.runtime import Runtime
from corral.store import SqliteStore, Store

__all__ = [
    "CorralApp",
    "DirectoryTemplates",
    "HostTemplates",
    "create_runtime",
    "run_server",
]

log = logging.getLogger("corral")

# Standard E2B template names the fake runtime serves even when nothing was built.
_STANDARD_TEMPLATES = ("base", "code-interpreter-v1")


class DirectoryTemplates:
    """`TemplateCatalog` over built templates in a templates directory."""

    def __init__(self, templates_dir: Path) -> None:
        self._dir = templates_dir

    def load(self, name: str) -> TemplateRef:
        try:
            return templates.load_template(self._dir, name)
        except templates.TemplateNotFound as exc:
            raise TemplateNotFound(name) from exc


class HostTemplates:
    """For the `fake` runtime: built templates if present, else layer-less standard names.

    The fake runtime ignores layers (its agent runs on the host), so `base` and
    `code-interpreter-v1` work without a template build; other unknown names are still 404.
    """

    def __init__(self, templates_dir: Path) -> None:
        self._built = DirectoryTemplates(templates_dir)

    def load(self, name: str) -> TemplateRef:
        try:
            return self._built.load(name)
        except TemplateNotFound:
            if name not in _STANDARD_TEMPLATES:
                raise
        return TemplateRef(template_id=name, layers=(), alias=name)


def create_runtime(name: str, state_dir: Path, run_dir: Path, *, disk_pool_mb: int = 0) -> Runtime:
    """The runtime called `name` (`namespaces` or `fake`)."""
    if name == "namespaces":
        from corral.runtime.namespaces import NamespacesRuntime

        return NamespacesRuntime(state_dir, run_dir, disk_pool_mb=disk_pool_mb)
    if name == "fake":
        from corral.runtime.fake import FakeRuntime

        return FakeRuntime(state_dir, run_dir)
    raise ValueError(f"unknown runtime {name!r} (expected 'namespaces' or 'fake')")


class CorralApp:
    """The whole server as one ASGI app (see module docstring)."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        runtime: Runtime | None = None,
        store: Store | None = None,
    ) -> None:
        self.config = config
        self._runtime = runtime or create_runtime(
            config.runtime, config.state_dir, config.run_dir, disk_pool_mb=config.disk_pool_mb
        )
        self._store = store
        self._orchestrator: Orchestrator | None = None
        self._router: DataPlaneRouter | None = None

    @property
    def orchestrator(self) -> Orchestrator:
        assert self._orchestrator is not None, "the app has not started"
        return self._orchestrator

    async def startup(self) -> None:
        config = self.config
        if self._store is None:
            self._store = SqliteStore(config.database_path)
        templates = (
            HostTemplates(config.templates_dir)
            if self._runtime.name == "fake"
            else DirectoryTemplates(config.templates_dir)
        )
        settings = OrchestratorSettings(
            default_timeout=config.default_timeout,
            max_timeout=config.max_timeout,
            max_sandboxes=config.max_sandboxes,
            limits=LimitPolicy.from_overrides(config.limits, config.max_limits),
            network=config.network,
        )
        gateway = (
            Gateway(config.network, config.run_dir)
            if config.network.enabled and self._runtime.name == "namespaces"
            else None
        )
        orchestrator = Orchestrator(
            self._runtime, self._store, templates, settings, gateway=gateway
        )
        router = DataPlaneRouter(
            orchestrator,
            build_control_plane(orchestrator, config.api_keys),
            domain=config.domain,
        )
        orchestrator.add_removal_listener(router.forget_sandbox)
        await orchestrator.start()
        self._orchestrator, self._router = orchestrator, router
        if self._runtime.name == "fake":
            log.warning("runtime 'fake' ISOLATES NOTHING: use it for tests and development only")

    def current_router(self) -> DataPlaneRouter | None:
        """The data-plane router once started (for the WebSocket upgrade protocol)."""
        return self._router

    async def shutdown(self) -> None:
        if self._orchestrator is not None:
            await self._orchestrator.close()
        if self._router is not None:
            self._router.close()
        if self._store is not None:
            self._store.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        assert self._router is not None, "the app has not started (lifespan must be on)"
        await self._router(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                url = self.config.url
                key = "<one of --api-key>" if self.config.api_keys else "<any non-empty key>"
                print(
                    f"corral: serving on {url} (runtime {self._runtime.name}); export "
                    f"E2B_API_URL={url} E2B_SANDBOX_URL={url} E2B_API_KEY={key}",
                    flush=True,
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.shutdown()
                except Exception as exc:
                    log.exception("shutdown failed")
                    await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return


def run_server(config: ServerConfig) -> None:
    """Serve `config` with uvicorn until SIGTERM/SIGINT (blocking)."""
    import uvicorn

    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = CorralApp(config)
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        http="httptools",
        ws=upgrade_protocol(app.current_router),
        loop="asyncio",
        lifespan="on",
        access_log=False,
        log_level="info",
        timeout_graceful_shutdown=3,
        timeout_keep_alive=75,
    )
