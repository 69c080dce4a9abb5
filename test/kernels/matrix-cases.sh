#!/bin/sh
# The kernel matrix's cases, run on the host kernel (kernels.test.ts) and in
# each qemu guest (guest-run.sh) by the same steps:
#   sh matrix-cases.sh --root CHECKOUT
# For each case in $unixsock_cases (comma separated: a strategy, or auto) it
# starts the built executable with that --strategy, generates known traffic
# with sockgen, stops the capture with SIGTERM and prints everything the
# host-side checker needs between markers:
#   @@case NAME              a case begins
#   @@gen JSON               what sockgen did (one line per traffic generator)
#   @@rc N                   the capture's exit code
#   @@stderr BASE64          the capture's stderr
#   @@pcap BASE64...         the pcapng file, base64, ended by @@pcap-end
#   @@secs S                 how long the case took (start, traffic, stop)
#   @@end NAME
# and @@done when all cases ran. Whether a case must capture or be refused is
# decided afterwards, from kfeatures' reading of the same kernel.
# With unixsock_ident set, a last case "ident" checks the identity reads and the
# filters built on them (see ident_case).
# shellcheck disable=SC2154 # unixsock_cases, unixsock_gens and unixsock_ident come from the environment (the kernel command line in a guest)
ROOT=$2
EXE=$ROOT/extcap/unixsock
GEN=$ROOT/build/sockgen
WORK=$(mktemp -d "${TMPDIR:-/tmp}/unixsock-kernels-XXXXXX")
echo "@@kernel $(uname -r)"

b64() { base64 "$1" | tr -d '\n'; echo; }
now() { cut -d' ' -f1 /proc/uptime; }
secs() { awk -v t0="$1" '{ printf "%.1f\n", $1 - t0 }' /proc/uptime; }

# waits (up to 120 s under emulation) until capture $1 (stderr in $2) has its probes attached or gave up
attached() {
  i=0
  while ! grep -q capturing "$2" 2>/dev/null; do
    if ! kill -0 "$1" 2>/dev/null; then return 1; fi
    i=$((i + 1))
    if [ $i -gt 1200 ]; then echo "@@timeout attach"; kill -9 "$1"; return 1; fi
    sleep 0.1
  done
}

# the case's exit code, stderr and capture file ($1: rc, $2: stderr file, $3: pcapng)
report() {
  echo "@@rc $1"
  echo "@@stderr $(b64 "$2")"
  if [ -f "$3" ]; then
    echo "@@pcap"
    base64 "$3"
    echo "@@pcap-end"
  fi
}

run_case() {
  name=$1
  strat=${name#!}
  out=$WORK/$strat.pcapng
  err=$WORK/$strat.err
  rm -f "$out" "$err"
  t0=$(now)
  echo "@@case $name"
  "$EXE" -w "$out" --strategy "$strat" comm sockgen 2>"$err" &
  cap=$!
  if attached $cap "$err"; then
    # the traffic: $unixsock_gens, sockgen runs separated by commas, arguments by colons
    # (the host passes test/helpers/checks.ts's GENERATORS)
    for g in $(echo "$unixsock_gens" | tr ',' ' '); do
      # shellcheck disable=SC2046 # sockgen's arguments, split on purpose
      echo "@@gen $($GEN $(echo "$g" | tr ':' ' ') 2>&1 | tr -d '\n')"
    done
    kill -TERM $cap
  fi
  wait $cap
  report $? "$err" "$out"
  echo "@@secs $(secs "$t0")"
  echo "@@end $name"
}

# The identity case: the kernel reads behind the container fields (the pid
# namespace and the pid in it at a level below the root, the mount
# namespace, the cgroup id) and the filters on them (the cgroup's ancestor at
# level 1, the pid namespace, the socket's net namespace), on four sockgen
# stream-pairs placed so that each filter alone leaves out one of them:
#   @@gen 1  in the cgroup CG/inner, its own pid and net namespaces: captured
#   @@gen 2  this script's cgroup, its own pid and net namespaces: not in CG
#   @@gen 3  CG/inner, its own pid namespace, this net namespace
#   @@gen 4  CG/inner, this pid namespace, its own net namespace
# One capture (auto): "cgroup /CG and not pidns <ours> and not netns <ours>",
# the pid namespace as readlink prints it, the net namespace as a file. CG is
# made in the cgroup2 hierarchy (the guests mount one at /sys/fs/cgroup, as
# systemd does) and removed after.
ident_case() {
  t0=$(now)
  echo "@@case ident"
  out=$WORK/ident.pcapng
  err=$WORK/ident.err
  cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
  if [ -z "$cg2" ]; then
    echo "unixsock matrix: no cgroup2 file system is mounted" > "$err"
    report 99 "$err" "$out"
    echo "@@end ident"
    return
  fi
  name=unixsock-matrix-$$
  cg=$cg2/$name
  mkdir -p "$cg/inner"
  "$EXE" -w "$out" cgroup "/$name" and not pidns "$(readlink /proc/self/ns/pid)" and not netns "/proc/$$/ns/net" 2>"$err" &
  cap=$!
  if attached $cap "$err"; then
    for g in "$cg/inner:-p -n" ":-p -n" "$cg/inner:-p" "$cg/inner:-n"; do
      dir=${g%%:*}
      # the shell joins the cgroup, then becomes unshare, whose child (pid 1 of a new pid namespace) is sockgen
      echo "@@gen $(sh -c "${dir:+echo \$\$ > $dir/cgroup.procs && }exec unshare ${g#*:} -f $GEN stream-pair" 2>&1 | tr -d '\n')"
    done
    kill -TERM $cap
  fi
  wait $cap
  report $? "$err" "$out"
  for i in 1 2 3 4 5 6 7 8 9 10; do rmdir "$cg/inner" "$cg" 2>/dev/null && break; sleep 0.2; done
  echo "@@secs $(secs "$t0")"
  echo "@@end ident"
}

for c in $(echo "$unixsock_cases" | tr ',' ' '); do
  run_case "$c"
done
[ -n "$unixsock_ident" ] && ident_case
echo "@@done"
rm -rf "$WORK"
