"""The E2B-compatible control plane (Starlette). Imports `model`, `protocol`, `orchestrator`.

Routes only translate: E2B JSON -> typed commands for the `Orchestrator` -> E2B JSON.
Every non-2xx answer is `{"code": int, "message": str}` (protocol doc §3.1), including
unknown routes (404), wrong methods (405), bad bodies (400 naming the field), missing or
unknown API keys (401) and internal errors (500, no traceback).

| method and path                                          | success | errors        |
|----------------------------------------------------------|---------|---------------|
| POST /v2/sandboxes, POST /sandboxes                      | 201     | 400, 404, 429 |
| POST /v2/sandboxes/{id}/connect, /sandboxes/{id}/connect | 200     | 400, 404      |
| GET /sandboxes/{id}                                      | 200     | 404           |
| DELETE /sandboxes/{id}                                   | 204     | 404           |
| POST /sandboxes/{id}/timeout                             | 204     | 400, 404      |
| GET /v2/sandboxes (paged), GET /sandboxes                | 200     | 400           |
| GET /sandboxes/{id}/metrics?start=&end=                  | 200     | 400, 404      |
| GET /sandboxes/metrics?sandbox_ids=a,b                   | 200     | 400           |
| GET /sandboxes/{id}/events (Corral extension)            | 200     | 404           |
| GET /health (no API key needed)                          | 200     |               |
"""

from corral.api.app import build_control_plane
from corral.api.errors import ApiError

__all__ = ["ApiError", "build_control_plane"]
