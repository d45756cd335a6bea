"""The `corral` command: a plain click group; each command family registers itself here."""

from __future__ import annotations

from pathlib import Path

import click

from corral import __version__, config
from corral.cli_options import run_dir_option, state_dir_option, templates_dir_option
from corral.client.cli import sandbox
from corral.leftovers import leftovers
from corral.model import LimitOverrides, parse_limit_overrides
from corral.network.options import network_options
from corral.network.policy import OperatorNetworkSettings
from corral.templates.cli import template

__all__ = ["main"]


@click.group()
@click.version_option(__version__, prog_name="corral")
def main() -> None:
    """Corral: a self-hosted sandbox server for AI agents, speaking the E2B protocol."""


main.add_command(template)
main.add_command(sandbox)
main.add_command(leftovers)


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
@state_dir_option
@templates_dir_option
@run_dir_option
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    envvar=config.ENV_API_KEYS,
    help="Accept only this X-API-KEY (repeatable or comma list); default: any.",
)
@click.option("--max-sandboxes", type=int, default=1000, show_default=True)
@click.option(
    "--limits",
    "limits",
    default="",
    metavar="'cpu=N memory=MB disk=MB pids=N nofile=N'",
    help="Default resource limits of a sandbox (any subset; templates may set their own).",
)
@click.option(
    "--max-limits",
    "max_limits",
    default="",
    metavar="'cpu=N memory=MB disk=MB pids=N nofile=N'",
    help="The most a create request may ask for (any subset; 400 above).",
)
@click.option(
    "--default-timeout",
    type=click.IntRange(min=1),
    default=300,
    show_default=True,
    help="Seconds a sandbox lives when the client gives no timeout.",
)
@click.option(
    "--max-timeout",
    type=click.IntRange(min=1),
    default=24 * 3600,
    show_default=True,
    help="The longest timeout (wall-clock lifetime) a client may ask for, in seconds.",
)
@click.option(
    "--disk-pool-mb",
    type=click.IntRange(min=0),
    default=0,
    help="Size of a new disk pool image holding every sandbox's writable layer "
    "[default: half the free space of the state dir].",
)
@click.option(
    "--domain",
    default="corral.localhost",
    show_default=True,
    help="Preview URLs: a request with Host {port}-{sandboxId}.DOMAIN reaches that port "
    "inside the sandbox (set E2B_DOMAIN to the same value for Sandbox.get_host); '' = off.",
)
@network_options
def serve(
    host: str,
    port: int,
    runtime: str,
    state_dir: Path,
    templates_dir: Path,
    run_dir: Path,
    api_keys: tuple[str, ...],
    max_sandboxes: int,
    limits: str,
    max_limits: str,
    default_timeout: int,
    max_timeout: int,
    disk_pool_mb: int,
    domain: str,
    network_settings: OperatorNetworkSettings,
) -> None:
    """Run the server (control plane and data plane on one port) until SIGTERM/SIGINT."""
    from corral.app import run_server
    from corral.orchestrator import LimitPolicy

    defaults, ceilings = (
        _limits_option("--limits", limits),
        _limits_option("--max-limits", max_limits),
    )
    try:
        LimitPolicy.from_overrides(defaults, ceilings)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--limits/--max-limits") from exc
    if default_timeout > max_timeout:
        raise click.BadParameter(
            f"{default_timeout} is above --max-timeout {max_timeout}",
            param_hint="--default-timeout",
        )

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
            limits=defaults,
            max_limits=ceilings,
            default_timeout=default_timeout,
            max_timeout=max_timeout,
            disk_pool_mb=disk_pool_mb,
            domain=domain,
            network=network_settings,
        )
    )


def _limits_option(name: str, text: str) -> LimitOverrides:
    try:
        return parse_limit_overrides(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from exc
