"""The in-sandbox agent: envd's Connect RPC process and filesystem services, `/health`, `/envs`.

It runs as pid 1 of the sandbox's pid namespace after `pivot_root`, where the Python
installation is not visible: importing this package imports every module the agent will
ever need (see `_eager_imports`), and nothing is imported later.

Entry points: `serve(listener, config)` (blocking; the launcher's forked child calls it) and
`python -m corral.agent --listen PATH --config-json JSON` (`main`).

Code map: `server` (loop, signals) -> `http_server` (HTTP/1.1) -> `routes` (paths, access
token) -> `connect_server` (Connect framing, errors) -> `process_service/<rpc>.py` ->
`process_table` (reaper) / `managed_process` (output, input, end) -> `spawn` (fork/exec).
Filesystem calls go `connect_server` -> `filesystem_service/<rpc>.py` (see its docstring).
"""

from corral.agent import _eager_imports  # noqa: F401  (first: before anything can be lazy)
from corral.agent.cli import main
from corral.agent.server import serve
from corral.agent.warm_up import warm_up

__all__ = ["main", "serve", "warm_up"]
