#!/bin/sh
# /init of the arm64 test guests (busybox sh; make-initramfs.sh --arch arm64).
# This machine cannot lend its userland to an arm64 kernel, so the initramfs
# holds everything the guest runs: busybox, the arm64 build of the executable
# (extcap/unixsock under /unixsock, with glibc and libstdc++ in /lib), sockgen,
# kfeatures and matrix-cases.sh. Writes into the writable 9p share
# (mount_tag=results) what guest-run.sh writes for the x86_64 guests:
#   kfeatures.json  matrix.log  times
# (no e2e.tap: the end-to-end tests need this machine's Node and tools).
# Any failure prints @@problem and powers off.
PATH=/bin
export PATH
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
die() { echo "@@problem $*"; poweroff -f; }
rel=$(uname -r)
[ -f "/modules/$rel/order" ] || die "no modules for $rel in the initramfs"
while read -r m; do
  insmod "/modules/$rel/$m.ko" || die "insmod $m failed"
done < "/modules/$rel/order"
mount -t bpf bpf /sys/fs/bpf
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing
# the cgroup v2 hierarchy, where systemd mounts it: the records' cgroup ids are checked against it,
# and matrix-cases.sh's identity case makes a cgroup in it
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mkdir -p /tmp /results /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs shm /dev/shm
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 results /results || die "no results share"
export HOME=/tmp TMPDIR=/tmp LD_LIBRARY_PATH=/lib
stamp() { echo "$1 $(cut -d' ' -f1 /proc/uptime)" >> /results/times; echo "@@step $1"; }
stamp userland
# shellcheck disable=SC2046 # one argument per hook
/unixsock/build/kfeatures $(cat /unixsock/hooks) > /results/kfeatures.json 2>/results/kfeatures.err
stamp kfeatures
sh /unixsock/test/kernels/matrix-cases.sh --root /unixsock > /results/matrix.log 2>&1
stamp matrix
sync
umount /results
poweroff -f
