"""GET a JSON list from a running server's control plane and print it (the client commands'
one call and one output form).

Errors become `ClientError` with the server's own message (`{"code", "message"}` bodies), or
say that the server cannot be reached or did not answer with a list of objects.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

import click

from corral.client.run import ClientError

__all__ = ["echo_list", "get_sandbox_list"]

_TIMEOUT_S = 30.0


def get_sandbox_list(
    url: str,
    api_key: str,
    sandbox_id: str,
    resource: str,
    query: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """`GET /sandboxes/{sandbox_id}/{resource}[?query]` → its JSON array of objects."""
    path = f"/sandboxes/{urllib.parse.quote(sandbox_id, safe='')}/{resource}"
    if query:
        path += "?" + urllib.parse.urlencode(query)
    request = urllib.request.Request(url.rstrip("/") + path, headers={"X-API-KEY": api_key})
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        raise ClientError(f"{exc.code}: {_message(exc.read())}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ClientError(f"cannot reach the server at {url}: {exc}") from exc
    except ValueError as exc:
        raise ClientError(f"the server's answer is not JSON: {exc}") from exc
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        raise ClientError(f"the server's answer is not a list of {resource}")
    return body


def _message(raw: bytes) -> str:
    try:
        return str(json.loads(raw)["message"])
    except (ValueError, KeyError, TypeError):
        return raw.decode(errors="replace")[:200]


def echo_list(
    items: list[dict[str, Any]],
    as_json: bool,
    describe: Callable[[dict[str, Any]], str],
    when_empty: str,
) -> None:
    """Print `items` as the server's JSON array, or one `describe` line each (`when_empty` on
    stderr when there are none)."""
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    if not items:
        click.echo(when_empty, err=True)
    for item in items:
        click.echo(describe(item))
