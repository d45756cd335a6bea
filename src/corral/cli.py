"""The `corral` command: a plain click group; each command family registers itself here."""

from __future__ import annotations

from pathlib import Path

import click

from corral import __version__, config
from corral.templates.cli import template

__all__ = ["main"]


@click.group()
@click.version_option(__version__, prog_name="corral")
def main() -> None:
    """Corral: a self-hosted sandbox server for AI agents, speaking the E2B protocol."""


main.add_command(template)


@main.command()
@click.option("--host", default=config.DEFAULT_HOST, show_default=True)
@click.option("--port", type=int, default=config.DEFAULT_PORT, show_default=True)
@click.option(
    "--runtime",
    type=click.Choice(config.RUNTIME_NAMES),
    default="namespaces",
    show_default=True,
    help="Isolation backend; 'fake' isolates nothing (tests only).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=config.DEFAULT_STATE_DIR,
    envvar=config.ENV_STATE_DIR,
    show_default=True,
)
@click.option(
    "--templates-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=config.DEFAULT_TEMPLATES_DIR,
    envvar=config.ENV_TEMPLATES_DIR,
    show_default=True,
)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=config.DEFAULT_RUN_DIR,
    envvar=config.ENV_RUN_DIR,
    show_default=True,
)
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    envvar=config.ENV_API_KEYS,
    help="Accept only this X-API-KEY (repeatable or comma list); default: any.",
)
@click.option("--max-sandboxes", type=int, default=1000, show_default=True)
def serve(
    host: str,
    port: int,
    runtime: str,
    state_dir: Path,
    templates_dir: Path,
    run_dir: Path,
    api_keys: tuple[str, ...],
    max_sandboxes: int,
) -> None:
    """Run the server (control plane and data plane on one port) until SIGTERM/SIGINT."""
    from corral.app import run_server

    run_server(
        config.ServerConfig(
            host=host,
            port=port,
            runtime=runtime,
            state_dir=state_dir,
            templates_dir=templates_dir,
            run_dir=run_dir,
            api_keys=config.parse_api_keys(api_keys),
            max_sandboxes=max_sandboxes,
        )
    )
