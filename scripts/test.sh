#!/usr/bin/env bash
# Runs partyline's whole test suite on a fresh machine: installs what the tests
# need, checks formatting and lints, then runs every test. MPyC comes from the
# Python environment partyline manages itself (built on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
# The browser party: builds the wasm and web app (a few minutes on a fresh
# machine) and runs mixed browser/native sessions in headless Chromium.
scripts/test-web.sh
