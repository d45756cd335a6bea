"""Standard-library modules the agent (or a library it uses) would otherwise import lazily.

Inside the sandbox the agent runs after `pivot_root`: the Python installation is no longer
visible, so any import after start-up fails. Every module below is imported for the reason
on its line; `tests/unit/agent/test_no_lazy_imports.py` drives every RPC with imports
forbidden to prove the list complete.
"""

# ruff: noqa: F401
import encodings.idna  # str.encode("idna"): any host-name handling in socket/asyncio
import encodings.latin_1  # header bytes <-> str
import encodings.utf_8  # default codec (always loaded; listed for completeness)

__all__: list[str] = []
