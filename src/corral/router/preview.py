"""Preview URLs: which sandbox port a request is for, and whether it may pass.

A request reaches port `P` of sandbox `ID` when its Host is `P-ID.<domain>` (any `:port`
suffix ignored, case-insensitive; `<domain>` is `corral serve --domain`), or when it carries
the E2B routing headers `E2b-Sandbox-Id: ID` and `E2b-Sandbox-Port: P` (protocol doc §2).
Port 49983 is envd (the agent itself, its own access token); any other port is tunnelled
through the agent to `127.0.0.1:P` inside the sandbox (`router.tunnel`).

A sandbox created with `network.allowPublicTraffic: false` has a traffic access token; a
request to any port other than envd must then carry it in `E2B-Traffic-Access-Token`
(compared in constant time), else 403.
"""

from __future__ import annotations

import hmac

__all__ = ["TRAFFIC_TOKEN_HEADER", "parse_preview_host", "traffic_allowed"]

TRAFFIC_TOKEN_HEADER = b"e2b-traffic-access-token"


def parse_preview_host(host: bytes, domain: bytes) -> tuple[int, str] | None:
    """`(port, sandbox_id)` of a Host header `{port}-{sandboxId}.{domain}[:N]`, else None.

    `domain` must be lowercase and non-empty. The sandbox id is returned as written in the
    Host (lowercased); whether it exists is the caller's question.
    """
    name = host.strip().lower()
    if name.endswith(b"]"):  # an IPv6 literal: never a preview host
        return None
    colon = name.rfind(b":")
    if colon >= 0:
        name = name[:colon]
    name = name.removesuffix(b".")  # a fully qualified name
    if not name.endswith(domain) or len(name) <= len(domain) + 1:
        return None
    label = name[: -len(domain)]
    if not label.endswith(b"."):
        return None
    label = label[:-1]
    port, dash, sandbox_id = label.partition(b"-")
    if not dash or not sandbox_id or b"." in sandbox_id:
        return None
    if not port.isdigit() or len(port) > 5 or port.startswith(b"0"):
        return None
    number = int(port)
    if number > 65535:
        return None
    return number, sandbox_id.decode("ascii", "replace")


def traffic_allowed(expected: str | None, presented: bytes | None) -> bool:
    """Whether a preview request may pass the sandbox's traffic access token (if any)."""
    if expected is None:
        return True
    if presented is None:
        return False
    return hmac.compare_digest(presented.strip(), expected.encode())
