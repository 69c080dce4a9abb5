#!/usr/bin/env bash
# A minimal Debian root for tests that need another release's userland
# (Wireshark 4.4 in trixie, 4.6 in sid, Debian 13's own Node and clang):
#
#   test/chroot/make-root.sh NAME SUITE [PACKAGE...]    prints the root's path
#
# Built with mmdebstrap from the Debian archive this machine's apt already uses
# (read from its sources, never named here), cached in
# ~/.cache/unixsock/chroots/NAME and rebuilt only when SUITE or the package
# list change. Concurrent callers wait for one build (flock). Documentation,
# man pages and locales are left out (about 250 MB per root with tshark).
# The machine's extra CA certificates are installed in the root, so that npm
# and apt inside it reach the registries through the same TLS setup.
set -euo pipefail
[[ $# -ge 2 ]] || { echo "usage: make-root.sh NAME SUITE [PACKAGE...]" >&2; exit 2; }
name=$1 suite=$2
shift 2
[[ $name =~ ^[A-Za-z0-9._-]+$ ]] || { echo "make-root: bad name \"$name\"" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../scripts/lib/debian-mirror.sh
. "$here/../../scripts/lib/debian-mirror.sh"
debian_mirror || { echo "make-root: cannot find this machine's Debian mirror in its apt sources" >&2; exit 1; }
command -v mmdebstrap >/dev/null || { echo "make-root: mmdebstrap is not installed (scripts/deps.sh installs it)" >&2; exit 1; }

cache=${UNIXSOCK_CACHE:-$HOME/.cache/unixsock}/chroots
dir=$cache/$name
mkdir -p "$cache"
want="$suite $(printf '%s\n' "$@" | sort -u | tr '\n' ' ')"
exec 9>"$cache/$name.lock"
flock 9
if [[ -f $dir/.unixsock-root && $(cat "$dir/.unixsock-root") == "$want" ]]; then
  echo "$dir"
  exit 0
fi
rm -rf "$dir" "$dir.new"
pkgs=$(IFS=,; echo "$*")
log=$cache/$name.log
# Debian's snapshot mirrors may serve a Release file past its Valid-Until date: accept it for these roots.
# tshark asks whether non-root users may capture: answered before it is installed.
# shellcheck disable=SC2016 # the hooks' "$1" is mmdebstrap's argument, expanded by the shell it runs them with
if ! mmdebstrap --mode=root --variant=apt --quiet \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --essential-hook='echo "wireshark-common wireshark-common/install-setuid boolean false" | chroot "$1" debconf-set-selections 2>/dev/null || true' \
  ${pkgs:+--include="$pkgs"} \
  --customize-hook='if [ -d /usr/local/share/ca-certificates ]; then mkdir -p "$1/usr/local/share/ca-certificates"; cp -a /usr/local/share/ca-certificates/. "$1/usr/local/share/ca-certificates/"; fi; if [ -x "$1/usr/sbin/update-ca-certificates" ]; then chroot "$1" update-ca-certificates >/dev/null 2>&1 || true; fi' \
  "$suite" "$dir.new" "$MIRROR_URI" >"$log" 2>&1; then
  rm -rf "$dir.new"
  echo "make-root: mmdebstrap $suite failed (see $log): $(grep -E '^E:|error' "$log" | tail -1)" >&2
  exit 1
fi
echo "$want" >"$dir.new/.unixsock-root"
mv "$dir.new" "$dir"
echo "$dir"
