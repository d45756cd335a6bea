"""`corral sandbox events ID`: the limits a sandbox hit (memory, processes, CPU, disk).

Reads `GET /sandboxes/{id}/events` of a running server (a Corral extension of the control
plane) and prints one line per event, oldest first:
`2026-01-02T03:04:05.123456Z  oom_kill  ×2  2 process(es) killed by ...`.
Works for sandboxes that are gone too, as long as the server keeps their events.
"""

from __future__ import annotations

from typing import Any

import click

from corral.cli_options import server_access_options
from corral.client.api import echo_list, get_sandbox_list
from corral.client.run import ClientError

__all__ = ["events", "fetch_limit_events", "format_event"]


def fetch_limit_events(url: str, api_key: str, sandbox_id: str) -> list[dict[str, Any]]:
    """The events of `sandbox_id` as the server renders them; raises `ClientError`."""
    return get_sandbox_list(url, api_key, sandbox_id, "events")


def format_event(event: dict[str, Any]) -> str:
    return (
        f"{event.get('timestamp', '?')}  {event.get('kind', '?'):<13}  "
        f"×{event.get('count', '?')}  {event.get('detail', '')}"
    )


@click.command()
@server_access_options
@click.option("--json", "as_json", is_flag=True, help="Print the server's JSON array as is.")
@click.argument("sandbox_id")
def events(url: str, api_key: str, as_json: bool, sandbox_id: str) -> None:
    """Print the limits SANDBOX_ID hit: oom_kill, pids_max, cpu_throttled, disk_full."""
    try:
        found = fetch_limit_events(url, api_key, sandbox_id)
    except ClientError as exc:
        raise click.ClickException(str(exc)) from exc
    echo_list(found, as_json, format_event, f"sandbox {sandbox_id} has hit no limit")
