"""Sandbox lifecycle. Imports `model`, `runtime` and `store` (never a web framework).

`Orchestrator` turns typed commands (`CreateSandbox`, `SandboxQuery`, ids and timeouts)
into runtime calls, keeps the in-memory index of running sandboxes that the data plane reads
on every request, persists every change write-through to the `Store`, enforces deadlines
with one scheduler on the event loop, and reconciles the runtime with the store at start-up.

Error hierarchy: see `corral.orchestrator.errors`.
"""

from corral.orchestrator.commands import CreateSandbox, SandboxPage, SandboxQuery
from corral.orchestrator.errors import (
    CapacityExceeded,
    InvalidArgument,
    OrchestratorError,
    SandboxNotFound,
    SandboxStartFailed,
    ShuttingDown,
    TemplateNotFound,
)
from corral.orchestrator.index import SandboxRoute
from corral.orchestrator.limits import LIMIT_FIELD_NAMES, LimitPolicy
from corral.orchestrator.orchestrator import Orchestrator
from corral.orchestrator.reconcile import ReconcileReport
from corral.orchestrator.settings import OrchestratorSettings
from corral.orchestrator.templates import TemplateCatalog

__all__ = [
    "LIMIT_FIELD_NAMES",
    "CapacityExceeded",
    "CreateSandbox",
    "InvalidArgument",
    "LimitPolicy",
    "Orchestrator",
    "OrchestratorError",
    "OrchestratorSettings",
    "ReconcileReport",
    "SandboxNotFound",
    "SandboxPage",
    "SandboxQuery",
    "SandboxRoute",
    "SandboxStartFailed",
    "ShuttingDown",
    "TemplateCatalog",
    "TemplateNotFound",
]
