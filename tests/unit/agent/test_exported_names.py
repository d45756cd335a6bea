"""The public surface: `__all__` of every agent and protocol module names real objects."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import corral.agent
import corral.protocol


def _modules() -> list[str]:
    names = []
    for package in (corral.agent, corral.protocol):
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith("__main__"):
                names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_all_is_defined_and_complete(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    for item in exported:
        assert hasattr(module, item), f"{name}.__all__ lists missing {item}"


def test_agent_entry_points() -> None:
    assert corral.agent.__all__ == ["main", "serve", "warm_up"]
    assert callable(corral.agent.serve) and callable(corral.agent.main)
    assert callable(corral.agent.warm_up)
