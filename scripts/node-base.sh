#!/usr/bin/env bash
# Node's official binary for another architecture, the base of a cross-built
# single executable: the npm package node-linux-ARCH at the version and
# integrity package-lock.json pins (npm ci installs only this machine's),
# fetched with `npm pack` into ~/.cache/unixsock/node and checked against that
# integrity before it is unpacked into OUT.
# Usage: node-base.sh ARCH OUT   (ARCH: arm64, x64)
set -euo pipefail
arch=${1:?usage: node-base.sh ARCH OUT} out=${2:?usage: node-base.sh ARCH OUT}
root=$(cd "$(dirname "$0")/.." && pwd)
fail() { printf 'node-base: %s\n' "$*" >&2; exit 1; }
pkg=node-linux-$arch
read -r version integrity < <(node -e '
  const l = require(process.argv[1]).packages["node_modules/" + process.argv[2]];
  if (l) console.log(l.version, l.integrity);' "$root/package-lock.json" "$pkg") ||
  fail "package-lock.json pins no $pkg (npm install --save-optional --save-exact $pkg@VERSION)"
cache=${XDG_CACHE_HOME:-$HOME/.cache}/unixsock/node
tgz="$cache/$pkg-$version.tgz"
sum() { printf 'sha512-%s' "$(openssl dgst -sha512 -binary "$1" | base64 -w0)"; }
if [[ ! -f $tgz || $(sum "$tgz") != "$integrity" ]]; then
  mkdir -p "$cache"
  rm -f "$tgz"
  (cd "$cache" && npm pack --silent "$pkg@$version" >/dev/null) || fail "npm pack $pkg@$version failed"
  [[ $(sum "$tgz") == "$integrity" ]] || { rm -f "$tgz"; fail "$pkg-$version.tgz does not match the integrity in package-lock.json"; }
fi
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
tar -xzf "$tgz" -C "$out.tmp" --strip-components=1
rm -rf "$out" && mv "$out.tmp" "$out"
touch "$out/bin/node"
