#!/usr/bin/env bash
# Node single executable: bundle + native addon as an asset, injected into a
# copy of BASE, Node's official binary (Makefile NODE_BASE).
# Usage: make-sea.sh BUNDLE ADDON BASE OUT
set -euo pipefail
bundle=$1 addon=$2 node_bin=$3 out=$4
dir=$(dirname "$addon")
cfg="$dir/sea-config.json" blob="$dir/sea.blob"
# The blob is made by the base itself, so that the V8 code cache in it is
# that Node's. A base for another architecture runs through SEA_RUN (the
# Makefile's cross build: qemu-aarch64 (qemu-user) with the cross toolchain's libc;
# node --version of the arm64 base takes about 1.2 s that way here).
read -r -a run <<<"${SEA_RUN:-}"
# execArgv (Node >= 22.20): --disable-sigusr1, so that no SIGUSR1 can start
# Node's inspector (a debugger on 127.0.0.1:9229 that runs any code sent to it),
# not even during Node's own start-up, before any code of ours runs; a member of
# the capture group may signal the capture, which then holds capabilities (see
# docs/threat-model.md). execArgvExtension "none": nothing from NODE_OPTIONS or
# the command line is taken as Node's own options.
# useCodeCache: V8's compiled code for the bundle goes into the blob, so a start
# does not compile it; Wireshark runs the executable at each of its starts
# (--extcap-interfaces): median 35.8 ms against 41.3 ms without, 30 interleaved
# runs on this 2-vCPU VM (bench/run.ts, start-up).
cat > "$cfg" <<JSON
{
  "main": "$bundle",
  "output": "$blob",
  "disableExperimentalSEAWarning": true,
  "useCodeCache": true,
  "useSnapshot": false,
  "execArgv": ["--disable-sigusr1"],
  "execArgvExtension": "none",
  "assets": { "unixsock.node": "$addon" }
}
JSON
"${run[@]}" "$node_bin" --experimental-sea-config "$cfg" >/dev/null 2>"$dir/sea-config.log" || { cat "$dir/sea-config.log" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
tmp="$out.tmp"
# a failed step leaves no half-made executable behind (npm test would find nothing to run)
trap 'rm -f "$tmp"' EXIT
cp "$node_bin" "$tmp"
chmod u+w "$tmp"
"${STRIP:-strip}" --strip-all "$tmp" >/dev/null 2>&1 || true
# postject (LIEF) warns about every unnamed note section: keep its output unless it fails
if ! npx --no-install postject "$tmp" NODE_SEA_BLOB "$blob" --sentinel-fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2 >"$dir/postject.log" 2>&1; then
  cat "$dir/postject.log" >&2
  exit 1
fi
chmod 0755 "$tmp"
mv -f "$tmp" "$out"
