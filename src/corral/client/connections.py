"""`corral sandbox connections ID`: a sandbox's connection log (egress allowed and denied).

Reads `GET /sandboxes/{id}/connections` of a running server (a Corral extension of the
control plane) and prints one line per attempt, oldest first:
`2026-01-02T03:04:05.123456Z  denied   tcp  203.0.113.9:443  evil.test  sni: name not allowed`,
with `↑sent ↓received` bytes once the connection ended. `--verdict denied` shows refusals
only; `--limit N` the newest N. Works for sandboxes that are gone, while the server keeps
their entries.
"""

from __future__ import annotations

from typing import Any

import click

from corral.cli_options import server_access_options
from corral.client.api import echo_list, get_sandbox_list
from corral.client.run import ClientError

__all__ = ["connections", "fetch_connections", "format_connection"]


def fetch_connections(
    url: str, api_key: str, sandbox_id: str, limit: int, verdict: str | None
) -> list[dict[str, Any]]:
    """The entries as the server renders them; raises `ClientError`."""
    query = {"limit": str(limit), **({"verdict": verdict} if verdict else {})}
    return get_sandbox_list(url, api_key, sandbox_id, "connections", query)


def format_connection(entry: dict[str, Any]) -> str:
    port = entry.get("port")
    where = f"{entry.get('destination', '?')}" + ("" if port is None else f":{port}")
    sent, received = entry.get("bytesSent"), entry.get("bytesReceived")
    traffic = "" if sent is None else f"  ↑{sent} ↓{received}"
    return (
        f"{entry.get('timestamp', '?')}  {entry.get('verdict', '?'):<7}  "
        f"{entry.get('protocol', '?'):<4}  {where:<21}  {entry.get('name') or '-'}  "
        f"{entry.get('reason', '')}{traffic}"
    )


@click.command()
@server_access_options
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--verdict", type=click.Choice(["allowed", "denied"]), help="Only these.")
@click.option("--json", "as_json", is_flag=True, help="Print the server's JSON array as is.")
@click.argument("sandbox_id")
def connections(
    url: str, api_key: str, limit: int, verdict: str | None, as_json: bool, sandbox_id: str
) -> None:
    """Print SANDBOX_ID's connection attempts and DNS queries, allowed and denied."""
    try:
        found = fetch_connections(url, api_key, sandbox_id, limit, verdict)
    except ClientError as exc:
        raise click.ClickException(str(exc)) from exc
    echo_list(found, as_json, format_connection, f"sandbox {sandbox_id} has no connection logged")
