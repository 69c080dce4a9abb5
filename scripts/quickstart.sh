#!/usr/bin/env bash
# Quick start on a fresh Debian/Ubuntu machine (as root): install what is
# missing, build, install into Wireshark, then capture curl talking HTTP to a
# server on a Unix socket and show tshark decoding it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/deps.sh
npm ci --no-audit --no-fund
npm run build
bash scripts/install-extcap.sh --no-build

echo
echo "== first capture: curl -> HTTP server on a Unix socket =="
work=$(mktemp -d)
trap 'kill $srv 2>/dev/null || true; rm -rf "$work"' EXIT
sock="$work/api.sock"
node test/helpers/http-server.js "$sock" & srv=$!
while [[ ! -S $sock ]]; do sleep 0.1; done
./extcap/unixsock -q -w "$work/first.pcapng" --duration 3 path "$sock" &
cap=$!
sleep 1.5
curl -s --unix-socket "$sock" http://unixsock/containers/json >/dev/null
curl -s --unix-socket "$sock" http://unixsock/version >/dev/null
wait $cap
# install-extcap.sh put unixsock.lua where this Wireshark loads it (for root on 4.4+: the global plugin folder)
tshark -r "$work/first.pcapng" 2>/dev/null
echo
echo "Done. In Wireshark, pick the \"Unix sockets\" interface; from a shell: tshark -i unixsock"
