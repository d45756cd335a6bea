"""Jupyter messages → `/execute` output lines (protocol §8.1): keys, quotes, ANSI, encoding."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from corral.interpreter.outputs import (
    END_OF_EXECUTION,
    KEEPALIVE,
    encode_line,
    error_line,
    number_of_executions_line,
    result_line,
    stream_line,
    strip_ansi,
    strip_quotes,
)


def test_every_known_mime_type_has_its_key() -> None:
    bundle = {
        "text/plain": "'x'",
        "text/html": "<b>",
        "text/markdown": "# m",
        "image/svg+xml": "<svg/>",
        "image/png": "iVBOR",
        "image/jpeg": "/9j/",
        "application/pdf": "JVBE",
        "text/latex": "$x$",
        "application/json": {"a": [1]},
        "application/javascript": "alert(1)",
        "e2b/data": {"a": {"0": 1}},
        "e2b/chart": {"type": "line"},
    }
    assert result_line(bundle, is_main_result=True) == {
        "type": "result",
        "text": "x",
        "html": "<b>",
        "markdown": "# m",
        "svg": "<svg/>",
        "png": "iVBOR",
        "jpeg": "/9j/",
        "pdf": "JVBE",
        "latex": "$x$",
        "json": {"a": [1]},
        "javascript": "alert(1)",
        "data": {"a": {"0": 1}},
        "chart": {"type": "line"},
        "is_main_result": True,
    }


def test_unknown_mime_types_go_to_extra_and_nulls_are_left_out() -> None:
    line = result_line(
        {"text/plain": "p", "application/x-custom": {"k": 1}, "text/html": None},
        is_main_result=False,
    )
    assert line == {
        "type": "result",
        "text": "p",
        "extra": {"application/x-custom": {"k": 1}},
        "is_main_result": False,
    }


def test_plain_plot_bundle_has_no_extra() -> None:
    line = result_line(
        {"image/png": "iVBOR", "text/plain": "<Figure>", "e2b/chart": {"type": "line"}},
        is_main_result=False,
    )
    assert "extra" not in line
    assert set(line) == {"type", "png", "text", "chart", "is_main_result"}


def test_one_pair_of_matching_quotes_is_removed() -> None:
    assert strip_quotes("'abc'") == "abc"
    assert strip_quotes('"abc"') == "abc"
    assert strip_quotes("''x''") == "'x'"
    assert strip_quotes("'abc\"") == "'abc\""
    assert strip_quotes("'") == "'"
    assert strip_quotes("''") == ""
    assert strip_quotes("abc") == "abc"


def test_ansi_sequences_are_removed_from_text_and_tracebacks() -> None:
    assert strip_ansi("\x1b[33m2\x1b[39m") == "2"
    assert strip_ansi("\x1b]0;title\x07ok") == "ok"
    coloured = result_line({"text/plain": '\x1b[32m"1"\x1b[39m'}, is_main_result=True)
    assert coloured["text"] == "1"
    error = error_line("\x1b[31mValueError", "bad", ["\x1b[31mframe 1\x1b[0m", "frame 2"])
    assert error == {
        "type": "error",
        "name": "ValueError",
        "value": "bad",
        "traceback": "frame 1\nframe 2",
    }


def test_error_line_tolerates_missing_fields() -> None:
    assert error_line(None, None, None) == {
        "type": "error",
        "name": "",
        "value": "",
        "traceback": "",
    }
    assert error_line("", "1", [])["traceback"] == ""


def test_stream_lines_carry_an_iso_timestamp() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
    assert stream_line("stdout", "hi\n", now=moment) == {
        "type": "stdout",
        "text": "hi\n",
        "timestamp": "2026-01-02T03:04:05.600000+00:00",
    }
    line = stream_line("stderr", "e")
    assert line["type"] == "stderr"
    assert datetime.fromisoformat(line["timestamp"]).tzinfo is not None


def test_encoded_lines_are_single_json_lines() -> None:
    raw = encode_line({"type": "stdout", "text": "a\nb\n\nc", "x": "é"})
    assert raw.endswith(b"\n")
    assert raw.count(b"\n") == 1
    assert json.loads(raw) == {"type": "stdout", "text": "a\nb\n\nc", "x": "é"}
    assert "é".encode() in raw
    for constant in (KEEPALIVE, END_OF_EXECUTION):
        assert constant.count(b"\n") == 1 and json.loads(constant)["type"]


def test_number_of_executions_line() -> None:
    assert number_of_executions_line(3) == {"type": "number_of_executions", "execution_count": 3}
