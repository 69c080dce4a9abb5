#!/usr/bin/env bash
# Refreshes the README's pictures from the GUI test (test/e2e/gui.test.ts):
# Wireshark under Xvfb, driven with xdotool, lists "Unix sockets", opens its
# options dialog, captures curl talking HTTP to a server on a Unix socket
# live, and follows the TCP stream.
# Needs: root (the capture), wireshark-qt, xvfb, imagemagick, xdotool, curl.
# Writes docs/wireshark-{interfaces,options,http,follow}.png, and from the Docker test
# (test/e2e/containers.test.ts: needs docker.io and busybox-static) docs/wireshark-containers.png.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
for c in wireshark Xvfb import xdotool curl; do
  command -v $c >/dev/null || { echo "screenshots: $c is missing (apt-get install wireshark xvfb imagemagick xdotool curl)" >&2; exit 1; }
done
cd "$root"
UNIXSOCK_SCREENSHOTS="$root/docs" CI=true node scripts/run-tests.mjs test/e2e/gui.test.ts test/e2e/containers.test.ts
echo "screenshots: docs/wireshark-interfaces.png docs/wireshark-options.png docs/wireshark-http.png docs/wireshark-follow.png docs/wireshark-containers.png"
