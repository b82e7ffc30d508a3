#!/usr/bin/env bash
# Builds a release zip: the binary, the PowerShell scripts, the example configs, the systemd
# units, the docs and the README.   scripts/package.sh [linux|windows]   (default: linux)
# Writes target/dist/dirsync-<version>-<platform>.zip and prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
platform=${1:-linux}
version=$(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)
case "$platform" in
    linux) target=x86_64-unknown-linux-gnu; exe=dirsync ;;
    windows) target=x86_64-pc-windows-gnu; exe=dirsync.exe
        rustup target list --installed | grep -qx "$target" || rustup target add "$target" ;;
    *) echo "usage: scripts/package.sh [linux|windows]" >&2; exit 2 ;;
esac
cargo build --locked --release --target "$target"
name="dirsync-$version-$platform"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name/scripts" "$stage/$name/examples" "$stage/$name/docs"
cp "target/$target/release/$exe" "$stage/$name/"
cp scripts/*.ps1 "$stage/$name/scripts/"
cp examples/dirsync.toml examples/rules.toml "$stage/$name/examples/"
cp -r examples/systemd "$stage/$name/examples/"
cp docs/*.md "$stage/$name/docs/"
cp README.md "$stage/$name/"
mkdir -p target/dist
out="$PWD/target/dist/$name.zip"
rm -f "$out"
(cd "$stage" && python3 -m zipfile -c "$out" "$name")
echo "$out"
