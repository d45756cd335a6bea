#!/usr/bin/env bash
# Install what the benchmark suite (bench/suite.py) needs beyond Corral itself. Idempotent:
# each step checks first and says what it does; a re-run on a ready machine changes nothing.
#   1. the baselines' Debian packages: bubblewrap (bwrap), podman + runc (the "Docker
#      container"), runsc (gVisor); installed only if one is missing
#   2. matplotlib in .venv (the `bench` extra of pyproject.toml), for the report's plots
# A package that cannot be installed is reported and skipped: the suite then reports that
# baseline as unavailable with the reason, it never drops it silently. Needs root.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

say() { printf '==> %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "setup_baselines.sh needs root: run it as 'sudo bench/setup_baselines.sh'" >&2
    exit 1
fi

# Why each package: bubblewrap and runsc are baselines themselves; podman runs the container
# baseline with runc as its OCI runtime (the runtime `docker run` uses by default).
APT_PACKAGES=(bubblewrap podman runc runsc)
missing=()
for package in "${APT_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "apt-get update"
    apt-get update -qq || say "apt-get update failed; trying the install anyway"
    for package in "${missing[@]}"; do
        say "apt-get install -y $package"
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "$package"; then
            say "could not install $package: its baseline will be reported as unavailable"
        fi
    done
else
    say "baseline packages: all ${#APT_PACKAGES[@]} installed (${APT_PACKAGES[*]})"
fi

if .venv/bin/python -c 'import matplotlib' 2>/dev/null; then
    say "matplotlib: present"
else
    say "pip install -e '.[test,bench]' (matplotlib for the plots)"
    .venv/bin/python -m pip install --quiet --progress-bar off -e '.[test,bench]' \
        || say "matplotlib unavailable: the report will have tables but no plots"
fi
