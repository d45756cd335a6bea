"""The public surface is explicit: every module of `corral` has an `__all__` naming real objects."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import corral


def _modules() -> list[str]:
    return [
        info.name
        for info in pkgutil.walk_packages(corral.__path__, "corral.")
        if not info.name.endswith("__main__")
    ]


@pytest.mark.parametrize("name", _modules())
def test_all_is_defined_and_names_real_objects(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [item for item in exported if not hasattr(module, item)]
    assert missing == [], f"{name}.__all__ lists missing names {missing}"
