#!/usr/bin/env bash
# Set up (skipping what is done), then ruff, mypy, import-linter and pytest. Every step runs;
# the exit status is non-zero if any step failed. pytest runs last so its summary is the last
# line. "No tests collected" (pytest status 5) is a failure. Arguments go to pytest and
# replace the default `tests` (e.g. `scripts/test.sh tests/unit -x`).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

say() { printf '==> %s\n' "$*"; }

bash scripts/setup.sh || { echo "setup failed" >&2; exit 1; }

failed=()
check() {
    local name=$1
    shift
    say "$name"
    "$@" || failed+=("$name")
}
check "ruff check" .venv/bin/ruff check .
check "mypy --strict" .venv/bin/mypy
check "import-linter" .venv/bin/lint-imports
if [ "${#failed[@]}" -gt 0 ]; then
    say "FAILED: ${failed[*]} (running the tests anyway)"
fi

if [ "$#" -eq 0 ]; then
    set -- tests
fi
say "pytest $*"
.venv/bin/python -m pytest -q "$@"
status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure" >&2
    exit 1
fi
if [ "$status" -ne 0 ]; then
    exit "$status"
fi
if [ "${#failed[@]}" -gt 0 ]; then
    exit 1
fi
exit 0
