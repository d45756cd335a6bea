"""E2B display formats of the python kernel: `e2b/data` for DataFrames, `e2b/chart` for figures.

Both are added to IPython's *mime-bundle* formatter by type name, so pandas, matplotlib and
e2b_charts are never imported here: IPython looks the functions up when an object of that
type is displayed, and its other formatters still run (a DataFrame keeps `text/plain` and
`text/html`; a figure keeps the `image/png` of the inline backend and its `text/plain`).

* `e2b/data`: the DataFrame column-oriented, `{column: [values in row order]}` (what
  `to_dict(orient="list")` gives), made JSON-safe by pandas' own `to_json` (NaN → null,
  timestamps ISO 8601, other objects as strings). Frames above `MAX_DATA_CELLS` cells, or
  that `to_json` refuses, get no `e2b/data`.
* `e2b/chart`: `e2b_charts.chart_figure_to_dict(figure)`; nothing when it fails or finds no
  chart.

A formatter that raises would make IPython print its traceback into the user's output, so
both catch everything and then emit nothing.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = [
    "MAX_DATA_CELLS",
    "dataframe_bundle",
    "figure_bundle",
    "json_safe",
    "register_formatters",
]

MAX_DATA_CELLS = 200_000
"""Largest DataFrame (rows × columns) that gets an `e2b/data` representation."""

_DATAFRAME_MODULES = ("pandas", "pandas.core.frame")
"""`DataFrame.__module__` is `pandas` since pandas 3 and `pandas.core.frame` before."""


def register_formatters(shell: Any) -> None:
    """Register the E2B formats with an IPython shell's display formatter."""
    bundle = shell.display_formatter.mimebundle_formatter
    for module in _DATAFRAME_MODULES:
        bundle.for_type_by_name(module, "DataFrame", dataframe_bundle)
    bundle.for_type_by_name("matplotlib.figure", "Figure", figure_bundle)


def dataframe_bundle(frame: Any) -> dict[str, Any] | None:
    """`{"e2b/data": {column: [values]}}` for a DataFrame, or None."""
    try:
        rows, columns = frame.shape
        if rows * columns > MAX_DATA_CELLS:
            return None
        table = json.loads(frame.to_json(orient="split", date_format="iso", default_handler=str))
        data = {
            name if isinstance(name, str) else str(name): [row[index] for row in table["data"]]
            for index, name in enumerate(table["columns"])
        }
    except Exception:
        return None
    return {"e2b/data": data}


def figure_bundle(figure: Any) -> dict[str, Any] | None:
    """`{"e2b/chart": {...}}` for a matplotlib figure e2b_charts understands, or None."""
    try:
        from e2b_charts import chart_figure_to_dict

        chart = json_safe(chart_figure_to_dict(figure))
    except Exception:
        return None
    if not chart:
        return None
    return {"e2b/chart": chart}


def json_safe(value: Any) -> Any:
    """`value` with only JSON types: NaN/inf → None, numpy scalars → Python, others → str."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return json_safe(item())
        except Exception:
            pass
    return str(value)
