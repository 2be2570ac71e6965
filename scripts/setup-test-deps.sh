#!/usr/bin/env bash
# Installs the system packages partyline's tests need, on a fresh Debian machine
# (run as root, as CI does). Idempotent: packages already present are skipped.
set -euo pipefail
need=()
command -v python3 >/dev/null || need+=(python3 python3-venv)
command -v ip >/dev/null || need+=(iproute2)
command -v iptables >/dev/null || need+=(iptables)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-test-deps: need root to install: ${need[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
