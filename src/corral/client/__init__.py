"""A small client of a running Corral server, for the `corral sandbox` commands.

It speaks the same wire protocol as the official SDK (control plane JSON, then Connect
streams through the data plane with `E2b-Sandbox-Id`), with the standard library only, so
`corral sandbox run` starts fast. Imports `protocol` only.
"""

from __future__ import annotations

__all__: list[str] = []
