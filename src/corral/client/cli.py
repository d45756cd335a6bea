"""`corral sandbox ...`: use a running server from the shell (`corral sandbox run -- CMD`)."""

from __future__ import annotations

import sys

import click

from corral.cli_options import server_access_options
from corral.client.connections import connections
from corral.client.events import events
from corral.client.run import ClientError, run_in_new_sandbox

__all__ = ["sandbox"]

# Signal-ended commands exit like a shell reports them (128 + SIGKILL).
KILLED_EXIT_STATUS = 137


@click.group()
def sandbox() -> None:
    """Use sandboxes of a running Corral server."""


@sandbox.command(context_settings={"ignore_unknown_options": True})
@server_access_options
@click.option("--template", default="base", show_default=True)
@click.option(
    "--timeout",
    "sandbox_timeout",
    type=int,
    default=300,
    show_default=True,
    help="Sandbox lifetime in seconds, should the kill be lost.",
)
@click.option("--keep", is_flag=True, help="Do not kill the sandbox; print its id to stderr.")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
def run(
    url: str, api_key: str, template: str, sandbox_timeout: int, keep: bool, argv: tuple[str, ...]
) -> None:
    """Create a sandbox, run ARGV in it (no shell; output streamed), kill the sandbox.

    Exits with the command's exit status: `corral sandbox run -- bash -lc 'echo hi'`.
    """
    try:
        result = run_in_new_sandbox(
            url,
            api_key,
            argv,
            stdout=sys.stdout.buffer,
            stderr=sys.stderr.buffer,
            template=template,
            sandbox_timeout=sandbox_timeout,
            keep=keep,
        )
    except ClientError as exc:
        raise click.ClickException(str(exc)) from exc
    if keep:
        click.echo(f"sandbox {result.sandbox_id} kept", err=True)
    raise SystemExit(result.exit_code if result.exit_code >= 0 else KILLED_EXIT_STATUS)


sandbox.add_command(events)
sandbox.add_command(connections)
