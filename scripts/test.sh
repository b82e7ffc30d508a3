#!/usr/bin/env bash
# Runs every test of dirsync. Installs what the tests need first (Debian packages for the
# real test servers), so it works on a fresh machine as it is:   scripts/test.sh
# The SFTP tests create a system user (dirsync-sftp, no shell) and need root, as in CI.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the test servers need (OpenLDAP slapd, Samba AD DC, OpenSSH sshd; openssl makes the
# Graph tests' RSA app certificates), installed only when
# missing. slapd is preseeded to create no instance: the tests start their own on 127.0.0.1.
packages=()
need() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" || packages+=("$1"); }
for p in openssl slapd ldap-utils openssh-server samba samba-dsdb-modules samba-vfs-modules samba-ad-provision ldb-tools; do need "$p"; done
if [ ${#packages[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "slapd slapd/no_configuration boolean true" | $sudo debconf-set-selections
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi

# PowerShell syntax check (no PowerShell on Linux): tree-sitter-pwsh in a private venv.
venv=target/pwsh-check-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import tree_sitter_pwsh" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check tree-sitter==0.26.1 tree-sitter-pwsh==0.38.1
fi
"$venv/bin/python" scripts/check-powershell.py scripts/*.ps1
# ... and the check must catch a broken script: a copy without its last closing brace.
broken=$(mktemp --suffix=.ps1)
trap 'rm -f "$broken"' EXIT
tac scripts/Export-DirSyncExchangeData.ps1 | sed '0,/^}$/{/^}$/d}' | tac > "$broken"
if "$venv/bin/python" scripts/check-powershell.py "$broken" >/dev/null; then
    echo "the PowerShell syntax check did not catch a broken script" >&2
    exit 1
fi
echo "PowerShell syntax check: a broken copy is refused, as it must be"
# ... and a copy with one Exchange call lacking -ErrorAction Stop.
sed '0,/Get-DynamicDistributionGroup -ResultSize Unlimited -ErrorAction Stop/s//Get-DynamicDistributionGroup -ResultSize Unlimited/' \
    scripts/Export-DirSyncExchangeData.ps1 > "$broken"
if "$venv/bin/python" scripts/check-powershell.py "$broken" >/dev/null; then
    echo "the PowerShell check did not catch an Exchange call without -ErrorAction Stop" >&2
    exit 1
fi
echo "PowerShell check: an Exchange call without -ErrorAction Stop is refused, as it must be"

cargo build --locked --all-targets
cargo test --locked -- --test-threads="${DIRSYNC_TEST_THREADS:-4}"

# The Windows build under Wine (about 5 minutes the first time: OpenSSL for mingw).
# DIRSYNC_SKIP_WINDOWS=1 skips it for a quick local run; CI always runs it.
if [ "${DIRSYNC_SKIP_WINDOWS:-0}" != 1 ]; then
    scripts/windows-smoke.sh
fi
