#!/usr/bin/env bash
# Builds the test guest's initramfs (uncompressed newc cpio: faster to boot
# under emulation than a compressed one): busybox, the unixsock executable,
# sockgen, the shared libraries they need, and guest-init.sh as /init.
# Usage: make-initramfs.sh OUT.cpio EXE SOCKGEN
set -euo pipefail
out=$1 exe=$2 gen=$3
here=$(cd "$(dirname "$0")" && pwd)
fail() { printf 'make-initramfs: %s\n' "$*" >&2; exit 1; }
bb=$(command -v busybox) || fail "busybox is missing (apt-get install busybox-static)"
[[ $(ldd "$bb" 2>&1) == *"not a dynamic"* ]] ||
  fail "$bb is not statically linked (apt-get install busybox-static)"
command -v cpio >/dev/null || fail "cpio is missing (apt-get install cpio)"
[[ -x $exe && -x $gen ]] || fail "build first: $exe and $gen are needed"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,etc}
cp "$bb" "$stage/bin/busybox"
for a in $("$bb" --list); do [[ $a == busybox ]] || ln -sf busybox "$stage/bin/$a"; done
cp "$exe" "$stage/unixsock"
cp "$gen" "$stage/sockgen"
cp "$here/guest-init.sh" "$stage/init"
chmod 0755 "$stage/init"
# the libraries of the executable, of sockgen and of the addon the executable unpacks (libz)
libs() { ldd "$1" 2>/dev/null | awk '/=>/ {print $3} /^\s*\/.*ld-linux/ {print $1}'; }
z=$(ldconfig -p | awk '/libz\.so\.1 .*x86-64/ && !z {z = $NF} END {print z}')
for l in $( { libs "$exe"; libs "$gen"; echo "$z"; } | sort -u); do
  [[ -f $l ]] || continue
  mkdir -p "$stage$(dirname "$l")"
  cp -L "$l" "$stage$l"
done
# ld.so is looked up at /lib64 by every x86_64 binary
if [[ ! -e $stage/lib64/ld-linux-x86-64.so.2 ]]; then
  mkdir -p "$stage/lib64"
  cp -L /lib64/ld-linux-x86-64.so.2 "$stage/lib64/"
fi
mkdir -p "$(dirname "$out")"
(cd "$stage" && find . | cpio -o -H newc --quiet) > "$out.tmp"
mv "$out.tmp" "$out"
