#!/usr/bin/env bash
# The Windows build, proven: cross-compiles dirsync.exe (x86_64-pc-windows-gnu, mingw-w64 from
# Debian) and runs it under Wine: --version, the demo dry run (its MAP file must be the reviewed
# examples/demo.map byte for byte), then the real job against the project's own servers
# (tests/it/windows.rs: LDAPS from slapd with ca_file, a self-signed leaf, a pin, StartTLS and
# plain LDAP; SFTP to sshd with ed25519 and RSA keys, a wrong host key refused — each MAP equal
# to the Linux binary's). Installs what it needs (mingw-w64, wine64, the Rust target). The first
# build compiles OpenSSL for mingw (libssh2 uses it on Windows too): minutes on 2 cores.
#
# Wine 8 (Debian 12) lacks bcryptprimitives.dll, which Rust's standard library imports; a tiny
# test-only shim (scripts/wine-shim/) is placed next to the .exe for this test. It never ships.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
for p in gcc-mingw-w64-x86-64 wine64; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || packages+=("$p")
done
if [ ${#packages[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi
rustup target list --installed | grep -qx x86_64-pc-windows-gnu || rustup target add x86_64-pc-windows-gnu

cargo build --locked --release --target x86_64-pc-windows-gnu
exe=target/x86_64-pc-windows-gnu/release/dirsync.exe

work=$(mktemp -d)
trap 'WINEPREFIX="$work/wineprefix" /usr/lib/wine/wineserver -k 2>/dev/null || true; rm -rf "$work"' EXIT
x86_64-w64-mingw32-gcc -shared -O2 -o "$work/bcryptprimitives.dll" \
    scripts/wine-shim/bcryptprimitives.c scripts/wine-shim/bcryptprimitives.def -ladvapi32
cp "$exe" "$work/"
mkdir "$work/demo"
cp examples/demo.ldif examples/demo.toml "$work/demo/"

export WINEDEBUG=-all WINEPREFIX="$work/wineprefix"
wine=/usr/lib/wine/wine64
version=$(cd "$work" && "$wine" dirsync.exe --version 2>/dev/null | tr -d '\r')
echo "under Wine: $version"
[ "$version" = "dirsync $(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)" ] || { echo "unexpected --version: $version" >&2; exit 1; }
(cd "$work" && "$wine" dirsync.exe sync --config 'demo\demo.toml' --dry-run)
cmp "$work/demo/out/retarus.map" examples/demo.map
echo "Windows smoke test: dirsync.exe under Wine wrote the reviewed demo MAP file byte for byte"

# The real job, from the .exe, against slapd and sshd (the tests start and stop them).
DIRSYNC_WINE_EXE="$work" cargo test --locked --test it windows:: -- --ignored --test-threads=1
