#!/usr/bin/env bash
# Runs partyline's whole test suite on a fresh machine: installs what the tests
# need, checks formatting and lints, then runs every test. MPyC comes from the
# Python environment partyline manages itself (built on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The browser party is its own workspace (wasm32 only, own lock file): the
# same checks, for its target, in the target dir scripts/build-web.sh uses.
rustup target list --installed | grep -qx wasm32-unknown-unknown ||
  rustup target add wasm32-unknown-unknown
(cd crates/partyline-web && cargo fmt -- --check &&
  CARGO_TARGET_DIR=$PWD/../../target/wasm RUSTFLAGS='--cfg getrandom_backend="wasm_js"' \
    cargo clippy --target wasm32-unknown-unknown --locked -- -D warnings)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# --no-fail-fast: one failing test binary must not hide the others' results.
cargo test --workspace --no-fail-fast 2>&1 | tee "$log" || status=$?
# The server's tests again with the sessions in PostgreSQL: each test binary
# starts a throw-away PostgreSQL on loopback (about a minute in all).
# shared_database runs on PostgreSQL anyway.
server_tests=()
for file in crates/partyline-server/tests/*.rs; do
  name=$(basename "$file" .rs)
  [ "$name" = shared_database ] || server_tests+=(--test "$name")
done
PARTYLINE_TEST_DATABASE=postgres cargo test --workspace --no-fail-fast "${server_tests[@]}" 2>&1 |
  tee -a "$log" || status=$?
# The browser party: builds the wasm and web app (a few minutes on a fresh
# machine), then mixed browser/native sessions in headless Chromium.
scripts/test-web.sh 2>&1 | tee -a "$log" || status=$?
# cargo prints one "test result" line per test binary, the last often for a
# crate without doc tests; one total line at the end says what ran.
awk '/^web-test: ok / { p++ } /^web-test: FAIL / { f++ }
     /^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
