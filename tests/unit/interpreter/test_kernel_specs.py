"""The kernel specs shipped in `corral/interpreter/kernels/` and their argv formatting."""

from __future__ import annotations

import json
import os
import sys

from corral.interpreter.kernel_specs import KERNELS_DIR, format_argv, kernel_argv, kernel_dir
from corral.interpreter.languages import LANGUAGES


def test_every_language_has_a_valid_spec() -> None:
    for language in LANGUAGES.values():
        with open(os.path.join(kernel_dir(language.kernel), "kernel.json"), encoding="utf-8") as f:
            spec = json.load(f)
        assert "{connection_file}" in spec["argv"]
        assert spec.get("interrupt_mode", "signal") in {"signal", "message"}


def test_no_kernel_is_named_python() -> None:
    # jupyter_client replaces a kernel named "python" by ipykernel's own spec.
    assert "python" not in os.listdir(KERNELS_DIR)


def test_python_kernel_runs_the_corral_launcher_without_colours_or_history() -> None:
    argv = kernel_argv("ipython")
    assert argv[:3] == ["python", "-m", "corral.interpreter.python_kernel"]
    assert "--InteractiveShell.colors=nocolor" in argv
    assert "--HistoryManager.enabled=False" in argv


def test_deno_is_interrupted_by_message_not_signal() -> None:
    # SIGINT ends `deno jupyter`; an interrupt_request stops the running cell only.
    with open(os.path.join(kernel_dir("deno"), "kernel.json"), encoding="utf-8") as f:
        assert json.load(f)["interrupt_mode"] == "message"


def test_format_argv_like_jupyter_client() -> None:
    argv = ["python", "-f", "{connection_file}", "{resource_dir}/x", "{prefix}", "{unknown}"]
    assert format_argv(argv, connection_file="/c.json", resource_dir="/r") == [
        sys.executable,
        "-f",
        "/c.json",
        "/r/x",
        sys.prefix,
        "{unknown}",
    ]
    assert format_argv(["deno", "{connection_file}"], connection_file="c", resource_dir="r") == [
        "deno",
        "c",
    ]
