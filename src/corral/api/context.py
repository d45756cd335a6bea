"""Typed access to what the app shares with every route."""

from __future__ import annotations

from starlette.requests import Request

from corral.orchestrator import Orchestrator

__all__ = ["orchestrator_of"]


def orchestrator_of(request: Request) -> Orchestrator:
    orchestrator = request.app.state.orchestrator
    assert isinstance(orchestrator, Orchestrator)
    return orchestrator
