#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer via cargo fuzz) of the LDAP client's response handling.
#   scripts/fuzz.sh [SECONDS]      default 1800 (30 minutes)
# Runs on the stable toolchain with RUSTC_BOOTSTRAP=1; installs cargo-fuzz if missing. The
# corpus is kept in fuzz/corpus/ldap_session (commit new entries that add coverage; the test
# command replays every file there). Crashes land in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-1800}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
corpus=fuzz/corpus/ldap_session
cargo run --quiet --release --manifest-path fuzz/Cargo.toml --bin seeds -- "$corpus"
# -fork=1 would survive a crash; plain mode stops at the first finding, which is what we want.
cargo fuzz run --fuzz-dir fuzz ldap_session "$corpus" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536 -print_final_stats=1
