"""Click options that several `corral` commands take, each defined once.

`serve` and `leftovers` must agree on where a server keeps its state (`--state-dir`,
`--run-dir`, `--templates-dir`, with the same defaults and environment variables); the
client commands (`corral sandbox …`) all reach a server the same way (`--url`, `--api-key`,
from the environment variables the E2B SDKs read).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from corral import config

__all__ = ["run_dir_option", "server_access_options", "state_dir_option", "templates_dir_option"]

_Command = TypeVar("_Command", bound=Callable[..., Any])

_DIRECTORY = click.Path(file_okay=False, path_type=Path)


def _directory_option(name: str, default: Path, envvar: str) -> Callable[[_Command], _Command]:
    return click.option(name, type=_DIRECTORY, default=default, envvar=envvar, show_default=True)


def state_dir_option(command: _Command) -> _Command:
    """`--state-dir` (env `CORRAL_STATE_DIR`; see `corral.config`)."""
    return _directory_option("--state-dir", config.DEFAULT_STATE_DIR, config.ENV_STATE_DIR)(command)


def run_dir_option(command: _Command) -> _Command:
    """`--run-dir` (env `CORRAL_RUN_DIR`)."""
    return _directory_option("--run-dir", config.DEFAULT_RUN_DIR, config.ENV_RUN_DIR)(command)


def templates_dir_option(command: _Command) -> _Command:
    """`--templates-dir` (env `CORRAL_TEMPLATES_DIR`)."""
    return _directory_option(
        "--templates-dir", config.DEFAULT_TEMPLATES_DIR, config.ENV_TEMPLATES_DIR
    )(command)


def server_access_options(command: _Command) -> _Command:
    """`--url` (env `E2B_API_URL`) and `--api-key` (env `E2B_API_KEY`) of a running server."""
    command = click.option(
        "--api-key", envvar="E2B_API_KEY", default="corral", help="X-API-KEY (env E2B_API_KEY)."
    )(command)
    return click.option(
        "--url",
        envvar="E2B_API_URL",
        default=f"http://{config.DEFAULT_HOST}:{config.DEFAULT_PORT}",
        show_default=True,
        help="The server (env E2B_API_URL).",
    )(command)
