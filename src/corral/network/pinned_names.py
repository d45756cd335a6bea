"""`PinnedNames`: which name each sandbox resolved to which address, until when.

The resolver adds an entry for every A/AAAA answer it gives a sandbox (the name the sandbox
asked for, the addresses at the end of its CNAME chain, the pin's time to live); the SNI/Host
proxy asks whether a connection's address was pinned for the name in its ClientHello or Host
header. The gateway's nftables sets hold the same addresses (per sandbox, no names); this
table is the part only the proxy needs. Expired entries are dropped as new ones come in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

__all__ = ["PinnedNames"]

_SWEEP_EVERY = 1024


class PinnedNames:
    """(sandbox, address) → {name: expiry}; used on the event loop thread only."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._pins: dict[tuple[str, str], dict[str, float]] = {}
        self._adds = 0

    def add(self, sandbox_id: str, name: str, addresses: Iterable[str], ttl: float) -> None:
        """`name` resolved to `addresses` for `sandbox_id`, valid for `ttl` seconds."""
        expiry = self._clock() + ttl
        for address in addresses:
            names = self._pins.setdefault((sandbox_id, address), {})
            names[name] = max(expiry, names.get(name, 0.0))
        self._adds += 1
        if self._adds % _SWEEP_EVERY == 0:
            self._sweep()

    def pinned(self, sandbox_id: str, address: str, name: str) -> bool:
        """Whether `address` was given to `sandbox_id` as an answer for `name`, unexpired."""
        expiry = self._pins.get((sandbox_id, address), {}).get(name)
        return expiry is not None and expiry > self._clock()

    def forget(self, sandbox_id: str) -> None:
        """Drop everything of a sandbox (it is gone)."""
        for key in [k for k in self._pins if k[0] == sandbox_id]:
            del self._pins[key]

    def __len__(self) -> int:
        return sum(len(names) for names in self._pins.values())

    def _sweep(self) -> None:
        now = self._clock()
        for key, names in list(self._pins.items()):
            for name in [n for n, expiry in names.items() if expiry <= now]:
                del names[name]
            if not names:
                del self._pins[key]
