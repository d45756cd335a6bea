"""Raw system calls of the filesystem service (ctypes is allowed only in `_linux` packages)."""

__all__: list[str] = []
