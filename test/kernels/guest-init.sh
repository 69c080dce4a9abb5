#!/bin/sh
# /init of the test guests (busybox sh, from make-initramfs.sh's initramfs).
# Boots this machine's own userland on the guest kernel: loads the kernel's
# 9p/virtio/overlay modules (/modules/RELEASE/order), mounts the host's root
# filesystem (qemu -virtfs mount_tag=hostroot, read-only) under an overlay
# whose upper layer is a tmpfs, and switches to it to run
# $unixsock_root/test/kernels/guest-run.sh (unixsock_root= on the kernel
# command line: the checkout). Any failure here prints @@problem and powers off.
# shellcheck disable=SC2154 # unixsock_root comes from the kernel command line
PATH=/bin
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
# msize 512 KiB: fewer round trips per read (the 8 KiB default makes node's start-up crawl)
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose hostroot /lower || die "mounting the host root over 9p failed"
mount -t tmpfs -o size=1536m rw /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot || die "overlay mount failed"
[ -f "/newroot$unixsock_root/test/kernels/guest-run.sh" ] || die "no checkout at $unixsock_root"
umount /proc /sys
exec switch_root /newroot /bin/bash "$unixsock_root/test/kernels/guest-run.sh"
