#!/usr/bin/env bash
# Quick start on a fresh Debian 12 or 13 machine (as root): install what is
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
# install-extcap.sh put unixsock.lua where this Wireshark loads it (for root on 4.4+: the global plugin folder);
# tshark's complaints are kept to say what went wrong
tshark -r "$work/first.pcapng" 2>"$work/tshark.err" || true

# The decode above must show curl's request; if it does not, say why and fail.
fail() { echo; echo "quickstart: $*" >&2; [[ -s $work/tshark.err ]] && sed 's/^/  tshark: /' "$work/tshark.err" >&2; exit 1; }
frames=$(tshark -r "$work/first.pcapng" -T fields -e frame.number 2>/dev/null | wc -l)
((frames > 0)) || fail "nothing was captured (the capture file has no packet); run ./extcap/unixsock path \"$sock\" by hand to see its messages"
# (read whole first: with pipefail, grep -q stopping early would fail the pipe with SIGPIPE)
protocols=$(tshark -G protocols 2>/dev/null | cut -f3)
if ! grep -qx unixsock <<<"$protocols"; then
  ver=$(tshark --version 2>/dev/null | sed -n '1s/^TShark (Wireshark) \([0-9]*\.[0-9]*\).*/\1/p')
  personal=$(tshark -G folders 2>/dev/null | awk -F'\t' 'index($1, "Personal Lua Plugins:") == 1 {print $2}')
  if [[ $(id -u) -eq 0 && -n $personal && -f $personal/unixsock.lua ]] &&
     printf '%s\n4.4\n' "$ver" | sort -V -C -r 2>/dev/null; then
    fail "the dissector was skipped: Wireshark $ver runs no personal Lua plugin ($personal) as root; run bash scripts/install-extcap.sh again (for root it installs into the global plugin folder)"
  fi
  fail "the dissector did not load (tshark -G protocols has no unixsock): $frames packets captured but not decoded"
fi
uri=$(tshark -r "$work/first.pcapng" -Y http.request -T fields -e http.request.uri 2>/dev/null | head -1)
[[ $uri == /containers/json ]] || fail "the dissector loaded, but curl's request was not decoded as HTTP ($frames packets captured; first request URI: '${uri:-none}')"
echo
echo "Done: curl's request was captured and decoded ($frames packets). In Wireshark, pick the \"Unix sockets\" interface; from a shell: tshark -i unixsock"
