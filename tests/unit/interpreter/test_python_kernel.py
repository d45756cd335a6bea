"""Code that runs inside the python kernel: E2B formatters and the env helpers (with fakes)."""

from __future__ import annotations

import math
from typing import Any

from corral.interpreter.python_kernel import display
from corral.interpreter.python_kernel.display import (
    dataframe_bundle,
    figure_bundle,
    json_safe,
    register_formatters,
)


class _Formatter:
    def __init__(self) -> None:
        self.registered: list[tuple[str, str]] = []

    def for_type_by_name(self, module: str, name: str, function: Any) -> None:
        self.registered.append((module, name))


class _Shell:
    def __init__(self) -> None:
        self.display_formatter = type("DF", (), {"mimebundle_formatter": _Formatter()})()


def test_formatters_are_registered_by_name_without_importing_pandas() -> None:
    shell = _Shell()
    register_formatters(shell)
    assert shell.display_formatter.mimebundle_formatter.registered == [
        ("pandas", "DataFrame"),  # pandas >= 3
        ("pandas.core.frame", "DataFrame"),
        ("matplotlib.figure", "Figure"),
    ]


class _Frame:
    def __init__(self, shape: tuple[int, int], payload: str) -> None:
        self.shape = shape
        self._payload = payload

    def to_json(self, **options: Any) -> str:
        assert options["orient"] == "split"
        if self._payload == "raise":
            raise ValueError("DataFrame columns must be unique for orient='columns'.")
        return self._payload


def test_dataframe_bundle_is_column_oriented_json() -> None:
    split = '{"columns":["a",2],"index":[0,1],"data":[[1,"x"],[null,"y"]]}'
    frame = _Frame((2, 2), split)
    assert dataframe_bundle(frame) == {"e2b/data": {"a": [1, None], "2": ["x", "y"]}}


def test_dataframe_bundle_emits_nothing_when_too_big_or_refused() -> None:
    assert dataframe_bundle(_Frame((display.MAX_DATA_CELLS + 1, 1), "{}")) is None
    assert dataframe_bundle(_Frame((1, 1), "raise")) is None
    assert dataframe_bundle(object()) is None


def test_figure_bundle_emits_nothing_on_failure() -> None:
    assert figure_bundle(object()) is None


class _Scalar:
    def __init__(self, value: object) -> None:
        self.value = value

    def item(self) -> object:
        return self.value


def test_json_safe() -> None:
    value = {"n": math.nan, "i": math.inf, 1: (_Scalar(2), _Scalar(math.nan)), "o": object}
    safe = json_safe(value)
    assert safe["n"] is None and safe["i"] is None
    assert safe["1"] == [2, None]
    assert safe["o"] == str(object)
