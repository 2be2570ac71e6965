#!/usr/bin/env bash
# Runs partyline's coverage-guided fuzz targets (fuzz/, cargo-fuzz + libFuzzer)
# for a given time each and prints one line per target: executions, corpus
# size and crashes. Needs a nightly toolchain (`rustup toolchain install
# nightly`) and cargo-fuzz (`cargo install cargo-fuzz`); installs neither
# without asking, because both take minutes.
#   scripts/fuzz.sh [SECONDS] [TARGET ...]     default: 600 s, every target
# Crashes are written to fuzz/artifacts/TARGET/; the corpus grows in a copy
# under target/fuzz-corpus so that the checked-in seeds stay small.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
command -v cargo-fuzz >/dev/null || {
  echo "fuzz: cargo-fuzz is missing: cargo install cargo-fuzz" >&2
  exit 1
}
rustup toolchain list | grep -q '^nightly' || {
  echo "fuzz: a nightly toolchain is missing: rustup toolchain install nightly" >&2
  exit 1
}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
(cd fuzz && cargo +nightly fuzz build)
status=0
for t in "${targets[@]}"; do
  corpus=target/fuzz-corpus/$t
  mkdir -p "$corpus"
  cp -n fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
  log=target/fuzz-corpus/$t.log
  if (cd fuzz && cargo +nightly fuzz run "$t" "../$corpus" -- -max_total_time="$seconds" -print_final_stats=1) >"$log" 2>&1; then
    crashes=0
  else
    crashes=$(find "fuzz/artifacts/$t" -type f 2>/dev/null | wc -l)
    status=1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  echo "fuzz: $t: ${seconds} s, $execs executions, corpus $(ls "$corpus" | wc -l) inputs, $crashes crashes (log $log)"
done
exit "$status"
