"""Helpers of N2's suites: run `n2_probe.py` inside a sandbox, read its connection log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

__all__ = ["PROBE", "connections", "run_probe"]

PROBE = (Path(__file__).parent / "n2_probe.py").read_text()
API_KEY = "e2b_corral_test"


def run_probe(sbx: Any, *actions: list[Any]) -> list[Any]:
    """The results of `actions` run by `n2_probe.py` as the sandbox's root."""
    command = f"python3 /tmp/n2_probe.py '{json.dumps(list(actions))}'"
    result = sbx.commands.run(command, user="root", timeout=60)
    found = json.loads(result.stdout)
    assert isinstance(found, list)
    return found


def connections(server: Any, sandbox_id: str, **query: str) -> list[dict[str, Any]]:
    """`GET /sandboxes/{id}/connections` of `server` (must answer 200)."""
    response = httpx.get(
        f"{server.url}/sandboxes/{sandbox_id}/connections",
        params=query,
        headers={"X-API-KEY": API_KEY},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, list)
    return body
