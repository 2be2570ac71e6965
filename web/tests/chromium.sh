#!/bin/sh
# Debian's Chromium for the web tests, with one more feature turned off:
# WebRtcHideLocalIpsWithMdns. With it on, a page's host candidates are
# `<uuid>.local` names, and Chromium announces and resolves them with
# multicast DNS on every interface: packets that leave the machine, which
# the tests must not send. Off, the candidates are the interfaces' own
# addresses, which reach the other parties over loopback.
#
# Chromium honours only the last --disable-features it is given, and
# Playwright passes a list of its own, so every list given is merged into
# one.
features=WebRtcHideLocalIpsWithMdns
for arg do
  shift
  case $arg in
    --disable-features=*) features="$features,${arg#--disable-features=}" ;;
    *) set -- "$@" "$arg" ;;
  esac
done
exec /usr/bin/chromium "$@" --disable-features="$features"
