#!/usr/bin/env bash
# Builds the browser party into target/web, which `partyline serve` serves at
# /join (see "Joining from a browser" in README.md):
#   - crates/partyline-web compiled to wasm32 + its JS glue (wasm-bindgen-cli),
#   - Pyodide from the npm package `pyodide` and the mpyc wheel from PyPI,
#     fetched here at build time so that the page loads nothing from a CDN,
#   - the page, its two workers (network, Python), the Python transport shim
#     and the example programs.
# Needs: rustup, clang (ring's C code for wasm32), node/npm, python3 (venv).
# Reproducible: every version is pinned (Pyodide and mpyc in versions.env,
# wasm-bindgen in crates/partyline-web/Cargo.lock); downloads are cached in
# target/web-deps and reused.
set -euo pipefail
cd "$(dirname "$0")/.."

# PYODIDE_VERSION, MPYC_VERSION: defined once for scripts and Rust alike.
source versions.env
# The JS glue tool must be the very version of the `wasm-bindgen` crate the
# wasm was built with: read it from the web crate's lock file.
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3 }' \
  crates/partyline-web/Cargo.lock)
[ -n "$WASM_BINDGEN_VERSION" ] || {
  echo "build-web: no wasm-bindgen in crates/partyline-web/Cargo.lock" >&2
  exit 1
}

root=$PWD
out=$root/target/web
deps=$root/target/web-deps
mkdir -p "$deps"

step() { echo "build-web: $*" >&2; }

rustup target list --installed | grep -qx wasm32-unknown-unknown ||
  rustup target add wasm32-unknown-unknown
command -v clang >/dev/null || {
  echo "build-web: clang is missing (ring needs it for wasm32): apt-get install -y clang" >&2
  exit 1
}
if [ "$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" != "$WASM_BINDGEN_VERSION" ]; then
  step "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  CARGO_TARGET_DIR=$root/target/wasm-tools cargo install --quiet wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

step "compiling crates/partyline-web for wasm32"
# Its own target dir: the native build's artefacts stay valid.
(cd crates/partyline-web &&
  CARGO_TARGET_DIR=$root/target/wasm RUSTFLAGS='--cfg getrandom_backend="wasm_js"' \
    cargo build --release --target wasm32-unknown-unknown --locked)

rm -rf "$out.tmp"
mkdir -p "$out.tmp/pkg" "$out.tmp/pyodide" "$out.tmp/wheels" "$out.tmp/programs"
wasm-bindgen --target web --no-typescript --out-dir "$out.tmp/pkg" \
  "$root/target/wasm/wasm32-unknown-unknown/release/partyline_web.wasm"

if [ ! -f "$deps/pyodide-$PYODIDE_VERSION/pyodide.mjs" ]; then
  step "fetching pyodide $PYODIDE_VERSION from npm"
  (cd "$deps" && npm pack --silent "pyodide@$PYODIDE_VERSION" >/dev/null &&
    rm -rf "pyodide-$PYODIDE_VERSION" && mkdir "pyodide-$PYODIDE_VERSION" &&
    tar xzf "pyodide-$PYODIDE_VERSION.tgz" -C "pyodide-$PYODIDE_VERSION" --strip-components=1)
fi
for f in pyodide.mjs pyodide.asm.mjs pyodide.asm.wasm python_stdlib.zip pyodide-lock.json; do
  cp "$deps/pyodide-$PYODIDE_VERSION/$f" "$out.tmp/pyodide/"
done

wheel=(mpyc-$MPYC_VERSION-py3-none-any.whl)
if [ ! -f "$deps/wheels/${wheel[0]}" ]; then
  step "fetching mpyc $MPYC_VERSION from PyPI"
  [ -x "$deps/venv/bin/python" ] || python3 -m venv "$deps/venv"
  "$deps/venv/bin/python" -m pip download --quiet --no-deps --only-binary=:all: \
    -d "$deps/wheels" "mpyc==$MPYC_VERSION"
fi
cp "$deps/wheels/${wheel[0]}" "$out.tmp/wheels/"
# The page learns the versions from the build, not from a literal in its code.
printf '{"mpyc": "%s", "mpyc_wheel": "wheels/%s", "pyodide": "%s"}\n' \
  "$MPYC_VERSION" "${wheel[0]}" "$PYODIDE_VERSION" >"$out.tmp/versions.json"

cp web/index.html web/app.js web/worker.js web/python.js web/style.css web/partyline_shim.py "$out.tmp/"
cp examples/secretsanta.py examples/securesum.py "$out.tmp/programs/"

# Compressed copies for browsers that take gzip (all do); `partyline serve`
# sends them instead. The .zip and .whl are compressed already.
find "$out.tmp" -type f \( -name '*.wasm' -o -name '*.mjs' -o -name '*.js' -o -name '*.json' \) \
  -exec gzip -9 --keep --no-name {} +

rm -rf "$out"
mv "$out.tmp" "$out"
step "done: $out ($(du -sh "$out" | cut -f1)); partyline serve serves it at /join"
