"""Jupyter messages → the output lines of `POST /execute` (§8.1), and their encoding.

Each line is one JSON object followed by `\\n`; `json.dumps` escapes every newline inside
strings, so a line never contains a blank line. The SDK (`e2b_code_interpreter.models`)
builds `Result(**line)` from a `result` line, so keys are exactly its field names and keys
whose value would be null are left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "END_OF_EXECUTION",
    "KEEPALIVE",
    "MIME_KEYS",
    "Line",
    "encode_line",
    "error_line",
    "number_of_executions_line",
    "result_line",
    "strip_ansi",
    "strip_quotes",
    "stream_line",
]

Line = dict[str, Any]

MIME_KEYS: dict[str, str] = {
    "text/plain": "text",
    "text/html": "html",
    "text/markdown": "markdown",
    "image/svg+xml": "svg",
    "image/png": "png",
    "image/jpeg": "jpeg",
    "application/pdf": "pdf",
    "text/latex": "latex",
    "application/json": "json",
    "application/javascript": "javascript",
    "e2b/data": "data",
    "e2b/chart": "chart",
}
"""MIME type of a Jupyter bundle → key of a `result` line; other types go into `extra`."""

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")

KEEPALIVE = b'{"type":"keepalive"}\n'
END_OF_EXECUTION = b'{"type":"end_of_execution"}\n'


def encode_line(line: Mapping[str, Any]) -> bytes:
    """One output line: compact JSON (UTF-8, non-ASCII kept) and a newline."""
    return (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def strip_ansi(text: str) -> str:
    """`text` without ANSI escape sequences (colours, cursor moves, OSC titles)."""
    return _ANSI.sub("", text)


def strip_quotes(text: str) -> str:
    """Remove one pair of matching quotes around the whole text (`'a'` → `a`)."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def result_line(data: Mapping[str, Any], *, is_main_result: bool) -> Line:
    """A `result` line from an `execute_result` (main) or `display_data` bundle."""
    line: Line = {"type": "result"}
    extra: dict[str, Any] = {}
    for mime, value in data.items():
        if value is None:
            continue
        key = MIME_KEYS.get(mime)
        if key is None:
            extra[mime] = value
        elif key == "text" and isinstance(value, str):
            line[key] = strip_quotes(strip_ansi(value))
        else:
            line[key] = value
    if extra:
        line["extra"] = extra
    line["is_main_result"] = is_main_result
    return line


def error_line(name: object, value: object, traceback: object) -> Line:
    """An `error` line; the traceback list is joined with newlines, ANSI removed."""
    if isinstance(traceback, Sequence) and not isinstance(traceback, str):
        text = "\n".join(str(frame) for frame in traceback)
    else:
        text = "" if traceback is None else str(traceback)
    return {
        "type": "error",
        "name": strip_ansi(str(name or "")),
        "value": strip_ansi(str(value or "")),
        "traceback": strip_ansi(text),
    }


def stream_line(name: str, text: str, *, now: datetime | None = None) -> Line:
    """A `stdout` or `stderr` line stamped with the time it was received (ISO 8601, UTC)."""
    moment = now or datetime.now(UTC)
    return {
        "type": "stderr" if name == "stderr" else "stdout",
        "text": text,
        "timestamp": moment.isoformat(),
    }


def number_of_executions_line(execution_count: int) -> Line:
    """The `number_of_executions` line: the kernel's counter for this cell."""
    return {"type": "number_of_executions", "execution_count": execution_count}
