"""Linux-specific privileged code: raw syscalls, cgroups, seccomp, the launcher.

The only package where `ctypes` may be imported (checked by `tests/unit/test_style.py`).
"""

__all__: list[str] = []
