#!/usr/bin/env bash
# Installs the system packages partyline's tests need, on a fresh Debian machine
# (run as root, as CI does). Idempotent: packages already present are skipped.
set -euo pipefail
need=()
command -v python3 >/dev/null || need+=(python3 python3-venv)
command -v ip >/dev/null || need+=(iproute2)
command -v iptables >/dev/null || need+=(iptables)
# The lab (crates/partyline-lab): ping for delay and loss, openssl for
# tcp-ssl's certificates, wg for the WireGuard baseline, a font for plots,
# conntrack for the nat-reset fault step.
command -v ping >/dev/null || need+=(iputils-ping)
command -v conntrack >/dev/null || need+=(conntrack)
command -v openssl >/dev/null || need+=(openssl)
command -v wg >/dev/null || need+=(wireguard-tools)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
# The browser party (scripts/test-web.sh): clang builds ring's C code for
# wasm32, npm fetches Pyodide and playwright-core, which drives Debian's
# Chromium (never a browser downloaded by npm).
command -v clang >/dev/null || need+=(clang)
command -v npm >/dev/null || need+=(nodejs npm)
command -v chromium >/dev/null || need+=(chromium)
# The server's tests on PostgreSQL (crates/partyline-server/tests/common/postgres.rs
# starts a throw-away server from this package's programs).
[ -d /usr/lib/postgresql ] || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-test-deps: need root to install: ${need[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
# Userspace WireGuard for the lab's baseline (the kernel has no WireGuard);
# built once from crates.io, a few minutes on a fresh machine.
if ! command -v boringtun-cli >/dev/null; then
  cargo install --locked boringtun-cli@0.7.1
fi
