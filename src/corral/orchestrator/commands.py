"""Typed commands and queries the API hands to the orchestrator (frozen, validated later)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from corral.model import EgressPolicy, LimitOverrides, SandboxRecord

__all__ = ["CreateSandbox", "SandboxPage", "SandboxQuery"]


@dataclass(frozen=True)
class CreateSandbox:
    """Bring up one sandbox of `template` for `timeout` seconds (None = server default).

    `limits` holds the resource limits the client asked for; the rest come from the template
    and the server (`orchestrator.limits.resolve_limits`).
    """

    template: str
    timeout: float | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    env_vars: Mapping[str, str] = field(default_factory=dict)
    limits: LimitOverrides = LimitOverrides()
    allow_public_traffic: bool = True
    """False: preview requests need the sandbox's traffic access token."""
    network: EgressPolicy = EgressPolicy()
    """Egress policy as the client asked for it (`allow_internet_access`, `network`)."""


@dataclass(frozen=True)
class SandboxQuery:
    """A filter over running sandboxes plus a page window.

    `states` holds E2B state names (`running`, `paused`); only `running` sandboxes exist
    here, so a query without it matches nothing. `limit=None` returns everything at once.
    """

    metadata: Mapping[str, str] = field(default_factory=dict)
    states: frozenset[str] = frozenset({"running", "paused"})
    template: str | None = None
    started_after: float | None = None
    order: Literal["asc", "desc"] = "desc"
    limit: int | None = None
    next_token: str | None = None


@dataclass(frozen=True)
class SandboxPage:
    """One page of a listing; `next_token` is None on the last page."""

    items: tuple[SandboxRecord, ...]
    next_token: str | None
