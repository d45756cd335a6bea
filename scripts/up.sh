#!/usr/bin/env bash
# Set up this machine (see setup.sh), then run the Corral server in the foreground.
# Arguments go to `corral serve` (default: --host 127.0.0.1 --port 3000 --runtime namespaces).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
bash scripts/setup.sh
printf '==> corral serve --uplink-nat %s\n' "$*"
exec .venv/bin/corral serve --uplink-nat "$@"
