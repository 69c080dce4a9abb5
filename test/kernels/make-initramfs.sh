#!/usr/bin/env bash
# Builds the test guests' initramfs (uncompressed newc cpio: faster to boot
# under emulation than a compressed one): busybox, guest-init.sh as /init, and
# for each kernel the modules that mount this machine's root filesystem over
# virtio-9p (fetch-kernels.sh unpacks them) in /modules/RELEASE. Everything
# else the guest runs (node, tshark, the executable, the tests) comes from
# that root filesystem.
# With --arch arm64 BUSYBOX, the arm64 guests' initramfs: that busybox
# (fetch-kernels.sh --arch arm64 fetches it), guest-init-arm64.sh as /init,
# the modules (9p for the results share), and under /unixsock what the guest
# runs: the arm64 build (make NODE_ARCH=arm64: extcap/unixsock-arm64 as
# extcap/unixsock, build/arm64/sockgen and kfeatures), matrix-cases.sh, the
# hooks kfeatures checks, and in /lib the C and C++ runtime of the cross
# toolchain (Debian's libc6/libstdc++6 for arm64) that Node's binary needs.
# Usage: make-initramfs.sh [--arch arm64 BUSYBOX] OUT.cpio KERNEL-DIR...   (KERNEL-DIR: .../RELEASE/ with modules/)
set -euo pipefail
arch=amd64
if [[ ${1:-} == --arch ]]; then arch=$2 bb=$3; shift 3; fi
out=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
fail() { printf 'make-initramfs: %s\n' "$*" >&2; exit 1; }
command -v cpio >/dev/null || fail "cpio is missing (apt-get install cpio)"
if [[ $arch == amd64 ]]; then
  bb=$(command -v busybox) || fail "busybox is missing (apt-get install busybox-static)"
  [[ $(ldd "$bb" 2>&1) == *"not a dynamic"* ]] ||
    fail "$bb is not statically linked (apt-get install busybox-static)"
  init=$here/guest-init.sh
else
  [[ $arch == arm64 && -x $bb ]] || fail "--arch arm64 BUSYBOX: no busybox at '$bb'"
  init=$here/guest-init-arm64.sh
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,proc,sys,dev,lower,rw,newroot,modules}
cp "$bb" "$stage/bin/busybox"
# the applets: the arm64 busybox lists them through qemu user-mode emulation
run=()
[[ $arch == amd64 ]] || run=(qemu-aarch64)
applets=$("${run[@]}" "$bb" --list) || fail "$bb --list failed${run:+ (apt-get install qemu-user)}"
for a in $applets; do [[ $a == busybox ]] || ln -sf busybox "$stage/bin/$a"; done
if [[ $arch == arm64 ]]; then
  u=$stage/unixsock
  mkdir -p "$u/extcap" "$u/build" "$u/test/kernels" "$stage/lib"
  for f in extcap/unixsock-arm64 build/arm64/sockgen build/arm64/kfeatures; do
    [[ -x $root/$f ]] || fail "$f is missing (make NODE_ARCH=arm64)"
  done
  ln "$root/extcap/unixsock-arm64" "$u/extcap/unixsock" 2>/dev/null || cp "$root/extcap/unixsock-arm64" "$u/extcap/unixsock"
  cp "$root/build/arm64/sockgen" "$root/build/arm64/kfeatures" "$u/build/"
  cp "$here/matrix-cases.sh" "$u/test/kernels/"
  node -p 'const s=require(process.argv[1]); [...new Set(s.order.flatMap((k) => s.strategies[k].hooks))].join(" ")' \
    "$here/strategies.json" > "$u/hooks"
  sysroot=/usr/aarch64-linux-gnu/lib
  [[ -f $sysroot/ld-linux-aarch64.so.1 ]] || fail "$sysroot has no arm64 C library (apt-get install g++-aarch64-linux-gnu)"
  for l in ld-linux-aarch64.so.1 libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 libstdc++.so.6 libgcc_s.so.1; do
    cp -L "$sysroot/$l" "$stage/lib/$l"
  done
fi
cp "$init" "$stage/init"
chmod 0755 "$stage/init"
for k in "$@"; do
  [[ -f $k/modules/order ]] || fail "$k/modules/order is missing (fetch-kernels.sh makes it)"
  cp -r "$k/modules" "$stage/modules/$(basename "$k")"
done
mkdir -p "$(dirname "$out")"
(cd "$stage" && find . | cpio -o -H newc --quiet) > "$out.tmp"
mv "$out.tmp" "$out"
