"""The agent's entry points (every module's `__all__` is checked in tests/unit)."""

from __future__ import annotations

import corral.agent


def test_agent_entry_points() -> None:
    assert corral.agent.__all__ == ["main", "serve", "warm_up"]
    assert callable(corral.agent.serve) and callable(corral.agent.main)
    assert callable(corral.agent.warm_up)
