#!/usr/bin/env bash
# Builds the test guests' initramfs (uncompressed newc cpio: faster to boot
# under emulation than a compressed one): busybox, guest-init.sh as /init, and
# for each kernel the modules that mount this machine's root filesystem over
# virtio-9p (fetch-kernels.sh unpacks them) in /modules/RELEASE. Everything
# else the guest runs (node, tshark, the executable, the tests) comes from
# that root filesystem.
# Usage: make-initramfs.sh OUT.cpio KERNEL-DIR...   (KERNEL-DIR: .../RELEASE/ with modules/)
set -euo pipefail
out=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
fail() { printf 'make-initramfs: %s\n' "$*" >&2; exit 1; }
bb=$(command -v busybox) || fail "busybox is missing (apt-get install busybox-static)"
[[ $(ldd "$bb" 2>&1) == *"not a dynamic"* ]] ||
  fail "$bb is not statically linked (apt-get install busybox-static)"
command -v cpio >/dev/null || fail "cpio is missing (apt-get install cpio)"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,proc,sys,dev,lower,rw,newroot,modules}
cp "$bb" "$stage/bin/busybox"
for a in $("$bb" --list); do [[ $a == busybox ]] || ln -sf busybox "$stage/bin/$a"; done
cp "$here/guest-init.sh" "$stage/init"
chmod 0755 "$stage/init"
for k in "$@"; do
  [[ -f $k/modules/order ]] || fail "$k/modules/order is missing (fetch-kernels.sh makes it)"
  cp -r "$k/modules" "$stage/modules/$(basename "$k")"
done
mkdir -p "$(dirname "$out")"
(cd "$stage" && find . | cpio -o -H newc --quiet) > "$out.tmp"
mv "$out.tmp" "$out"
