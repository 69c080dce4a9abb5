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
#   @@end NAME
# and @@done when all cases ran. Whether a case must capture or be refused is
# decided afterwards, from kfeatures' reading of the same kernel.
# shellcheck disable=SC2154 # unixsock_cases and unixsock_gens come from the environment (the kernel command line in a guest)
ROOT=$2
EXE=$ROOT/extcap/unixsock
GEN=$ROOT/build/sockgen
WORK=$(mktemp -d "${TMPDIR:-/tmp}/unixsock-kernels-XXXXXX")
echo "@@kernel $(uname -r)"

b64() { base64 "$1" | tr -d '\n'; echo; }

run_case() {
  name=$1
  strat=${name#!}
  out=$WORK/$strat.pcapng
  err=$WORK/$strat.err
  rm -f "$out" "$err"
  echo "@@case $name"
  "$EXE" -w "$out" --strategy "$strat" comm sockgen 2>"$err" &
  cap=$!
  # wait (up to 120 s under emulation) until the probes are attached, or the capture gave up
  i=0
  while ! grep -q capturing "$err" 2>/dev/null; do
    if ! kill -0 $cap 2>/dev/null; then break; fi
    i=$((i + 1))
    if [ $i -gt 1200 ]; then echo "@@timeout attach"; kill -9 $cap; break; fi
    sleep 0.1
  done
  if kill -0 $cap 2>/dev/null; then
    # the traffic: $unixsock_gens, sockgen runs separated by commas, arguments by colons
    # (the host passes test/helpers/checks.ts's GENERATORS)
    for g in $(echo "$unixsock_gens" | tr ',' ' '); do
      # shellcheck disable=SC2046 # sockgen's arguments, split on purpose
      echo "@@gen $($GEN $(echo "$g" | tr ':' ' ') 2>&1 | tr -d '\n')"
    done
    kill -TERM $cap
  fi
  wait $cap
  echo "@@rc $?"
  echo "@@stderr $(b64 "$err")"
  if [ -f "$out" ]; then
    echo "@@pcap"
    base64 "$out"
    echo "@@pcap-end"
  fi
  echo "@@end $name"
}

for c in $(echo "$unixsock_cases" | tr ',' ' '); do
  run_case "$c"
done
echo "@@done"
rm -rf "$WORK"
