"""Persisted sandbox records. Imports `model` only.

The server keeps every fact a restart must know here (STYLE: state that a restart must keep
lives in the database). Backends sit behind the small `Store` protocol: `SqliteStore` is the
embedded default (`<state_dir>/corral.db`), `MemoryStore` is the fake for unit tests.

Error hierarchy::

    StoreError               base of everything a store raises
    ├── DuplicateSandbox     insert of an id that already has a row
    ├── UnknownSandbox       update of an id that has no row
    └── SchemaMismatch       the database was written by an incompatible version

Besides sandbox rows, a store keeps `LimitEvent`s (a sandbox hit its memory, process, CPU
or disk limit) and `ConnectionEntry`s (the egress log: every connection attempt with its
verdict and, once it ended, its bytes) for a while after their sandbox is gone.
"""

from corral.store.base import DuplicateSandbox, SchemaMismatch, Store, StoreError, UnknownSandbox
from corral.store.connections import CONNECTIONS_PER_SANDBOX, ConnectionEntry, FlowEnd, Verdict
from corral.store.events import EVENTS_PER_SANDBOX, LimitEvent, LimitKind
from corral.store.memory import MemoryStore
from corral.store.sqlite import SCHEMA_VERSION, SqliteStore

__all__ = [
    "CONNECTIONS_PER_SANDBOX",
    "EVENTS_PER_SANDBOX",
    "SCHEMA_VERSION",
    "ConnectionEntry",
    "DuplicateSandbox",
    "FlowEnd",
    "LimitEvent",
    "LimitKind",
    "MemoryStore",
    "SchemaMismatch",
    "SqliteStore",
    "Store",
    "StoreError",
    "UnknownSandbox",
    "Verdict",
]
