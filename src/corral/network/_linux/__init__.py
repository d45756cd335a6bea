"""Linux-only helpers of the network package (`ctypes` is allowed only in `_linux` packages)."""

__all__: list[str] = []
