#!/usr/bin/env bash
# Prepare this machine for Corral. Idempotent: every step checks first and says what it does.
#   1. Debian packages (apt-get update + install, only if one is missing)
#   2. .venv from /usr/bin/python3 with corral installed editable, with the test and bench
#      extras (the bench smoke test renders the report's plots)
#      (re-installed only when pyproject.toml changed)
#   3. the `base` and `code-interpreter-v1` templates (`corral template build`; cached layers
#      make a re-run instant; the code interpreter's needs PyPI and the npm registry)
# Honours CORRAL_TEMPLATES_DIR. Needs root (debootstrap, mounts).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

say() { printf '==> %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh needs root: run it as 'sudo ./scripts/setup.sh'" >&2
    exit 1
fi

# Why each package: debootstrap + keyring build templates; python3-venv makes .venv;
# libseccomp2 backs pyseccomp; iproute2 + nftables make sandbox networks; util-linux gives
# unshare/mount; attr gives setfattr/getfattr; procps gives ps/pkill; ca-certificates for pip;
# btrfs-progs formats the disk pool that holds the sandboxes' quota-limited writable layers.
APT_PACKAGES=(
    debootstrap debian-archive-keyring python3 python3-venv libseccomp2 iproute2 nftables
    util-linux attr procps ca-certificates btrfs-progs
)
missing=()
for package in "${APT_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "apt-get update"
    apt-get update
    say "apt-get install -y ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
else
    say "Debian packages: all ${#APT_PACKAGES[@]} installed"
fi

if ! .venv/bin/python -c '' 2>/dev/null; then
    say "creating .venv with /usr/bin/python3"
    rm -rf .venv
    /usr/bin/python3 -m venv .venv
else
    say ".venv: present"
fi

stamp=.venv/.corral-pyproject.sha256
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ] \
    || ! .venv/bin/python -c 'import corral' 2>/dev/null; then
    say "pip install -e '.[test,bench]'"
    .venv/bin/python -m pip install --quiet --progress-bar off -e '.[test,bench]'
    echo "$wanted" > "$stamp"
else
    say "python packages: up to date with pyproject.toml"
fi

say "corral template build base"
.venv/bin/corral template build base
say "corral template build code-interpreter-v1"
.venv/bin/corral template build code-interpreter-v1
