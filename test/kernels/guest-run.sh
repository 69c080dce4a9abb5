#!/bin/bash
# Runs inside a test guest as PID 1, in this machine's own userland (see
# guest-init.sh), on the guest's kernel. Writes everything the host checks
# into the writable 9p share (mount_tag=results):
#   kfeatures.json   build/kfeatures' reading of this kernel (what each strategy's hooks do here)
#   matrix.log       matrix-cases.sh: each strategy forced, and auto, on known traffic
#   e2e.tap          the host's end-to-end capture tests (unixsock_tests=, comma separated)
#                    run by Node's test runner in the checkout
#   times            seconds at each step, from boot
# then powers the guest off.
# shellcheck disable=SC2154 # unixsock_* come from the kernel command line
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs shm /dev/shm
mount -t bpf bpf /sys/fs/bpf
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing
# the cgroup v2 hierarchy, where systemd mounts it: the records' cgroup ids are checked against it,
# and matrix-cases.sh's identity case makes a cgroup in it
mount -t cgroup2 cgroup2 /sys/fs/cgroup
# writable places on plain tmpfs: a socket made on the overlay reports the upper
# layer's st_dev to stat() while the kernel sees the overlay's, so a socket-file
# filter would match nothing; the host's /root would bring its own Wireshark
# setup. TMPDIR and HOME are fresh directories (the checkout may itself live
# under /tmp or /root); /tmp gets a tmpfs too unless the checkout is there.
mkdir -p /unixsock-tmp /unixsock-home
for d in /unixsock-tmp /unixsock-home /tmp /var/tmp; do
  case "$unixsock_root/" in "$d"/*) continue ;; esac
  mount -t tmpfs tmpfs "$d"
done
mkdir -p /results
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 results /results || { echo "@@problem no results share"; busybox poweroff -f; }
# emulation: the tests scale their timeouts (test/helpers/harness.ts)
export HOME=/unixsock-home TMPDIR=/unixsock-tmp CI=true UNIXSOCK_TEST_SLOWDOWN=10
cd "$unixsock_root" || exit 1
stamp() { echo "$1 $(cut -d' ' -f1 /proc/uptime)" >> /results/times; echo "@@step $1"; }
stamp userland
# (no < <(...) here: the guest has no /dev/fd)
# shellcheck disable=SC2046 # one argument per hook, split on purpose
build/kfeatures $(node -p 'const s=require("./test/kernels/strategies.json"); [...new Set(s.order.flatMap((k) => s.strategies[k].hooks))].join(" ")') \
  > /results/kfeatures.json 2>/results/kfeatures.err
stamp kfeatures
sh test/kernels/matrix-cases.sh --root "$unixsock_root" > /results/matrix.log 2>&1
stamp matrix
if [ -n "$unixsock_tests" ]; then
  # shellcheck disable=SC2046 # one argument per test file, split on purpose
  node --import tsx --test --test-concurrency=1 --test-reporter=tap --test-reporter-destination=/results/e2e.tap \
    $(echo "$unixsock_tests" | tr ',' ' ') > /results/e2e.out 2>&1
  echo "rc $?" >> /results/e2e.out
fi
stamp e2e
sync
umount /results
busybox poweroff -f
