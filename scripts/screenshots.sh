#!/usr/bin/env bash
# Proves the GUI side and refreshes the README's pictures: Wireshark under
# Xvfb lists "Unix sockets", opens its options dialog, and decodes a capture
# of curl talking HTTP to a server on a Unix socket.
# Needs: wireshark-qt, xvfb, imagemagick, xdotool, curl (root, for the capture).
# Writes docs/wireshark-{interfaces,options,http}.png.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
for c in wireshark Xvfb import xdotool curl; do
  command -v $c >/dev/null || { echo "screenshots: $c is missing (apt-get install wireshark-qt xvfb imagemagick xdotool curl)" >&2; exit 1; }
done
work=$(mktemp -d)
export HOME="$work/home" XDG_RUNTIME_DIR="$work/run" DISPLAY=:$((80 + RANDOM % 10))
mkdir -p "$HOME/.config/wireshark" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# a fixed main window: no window manager runs under Xvfb
printf 'gui.geometry_main_x: 0\ngui.geometry_main_y: 0\ngui.geometry_main_width: 1380\ngui.geometry_main_height: 980\n' > "$HOME/.config/wireshark/recent"
bash "$root/scripts/install-extcap.sh" --no-build >/dev/null
Xvfb "$DISPLAY" -screen 0 1400x1000x24 -nolisten tcp >/dev/null 2>&1 & pids+=($!)
sleep 1

# 1. the interface list and the options dialog (gear icon of "Unix sockets")
wireshark >/dev/null 2>&1 & ws=$!; pids+=($ws)
sleep 8
import -window root "$root/docs/wireshark-interfaces.png"
xdotool mousemove 179 516 click 1
sleep 3
import -window root "$root/docs/wireshark-options.png"
kill $ws; wait $ws 2>/dev/null || true

# 2. a real capture, decoded
sock="$work/api.sock"
node "$root/test/helpers/http-server.js" "$sock" & pids+=($!)
while [[ ! -S $sock ]]; do sleep 0.1; done
"$root/extcap/unixsock" -q -w "$work/http.pcapng" --duration 3 path "$sock" & cap=$!
sleep 1.5
curl -s --unix-socket "$sock" http://unixsock/containers/json >/dev/null
curl -s --unix-socket "$sock" http://unixsock/chunked >/dev/null
wait $cap
wireshark -r "$work/http.pcapng" -Y http >/dev/null 2>&1 & ws=$!; pids+=($ws)
sleep 8
xdotool mousemove 60 120 click 1   # first packet
sleep 1
xdotool mousemove 11 552 click 1   # expand "Unix Socket Message"
sleep 2
import -window root "$root/docs/wireshark-http.png"
echo "screenshots: docs/wireshark-interfaces.png docs/wireshark-options.png docs/wireshark-http.png"
