#!/usr/bin/env bash
# The browser party's end-to-end tests (web/tests/browser_party.mjs): builds
# the web app and the native binary (also one with the web app inside),
# installs playwright-core (npm, pinned by web/tests/package-lock.json) into
# target/web-test, and drives Debian's
# /usr/bin/chromium (scripts/setup-test-deps.sh installs it; no browser is
# ever downloaded). Results: target/web-test/screenshot.png, figures.json.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/target/web-test

scripts/build-web.sh
mkdir -p "$out"
# partyline with that very target/web inside (feature embed-web, as release
# binaries are made), kept as $out/partyline-embedded: cargo keeps both
# builds, so switching back costs no compiling.
cargo build --quiet -p partyline --features embed-web
ln -f target/debug/partyline "$out/partyline-embedded" 2>/dev/null ||
  cp target/debug/partyline "$out/partyline-embedded"
cargo build --quiet -p partyline

cp web/tests/package.json web/tests/package-lock.json "$out/"
(cd "$out" && npm ci --silent --no-audit --no-fund)

# A Python with the pinned mpyc for the plain-TCP reference run: partyline's
# own managed one, which the native parties use too.
source versions.env
home=${PARTYLINE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/partyline}
python=${PARTYLINE_PYTHON:-$home/python-mpyc-$MPYC_VERSION/bin/python}
if [ ! -x "$python" ]; then
  "$root/target/debug/partyline" demo >/dev/null
fi

PARTYLINE_BIN=$root/target/debug/partyline PLAYWRIGHT_DIR=$out \
  PARTYLINE_EMBEDDED_BIN=$out/partyline-embedded \
  PARTYLINE_PYTHON=$python WEB_TEST_OUT=$out \
  node web/tests/browser_party.mjs "$@"
