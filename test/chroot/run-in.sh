#!/usr/bin/env bash
# Runs a command inside a root made by make-root.sh, on the host's kernel:
#
#   test/chroot/run-in.sh ROOT [--bind SRC[:DST]]... [--env K=V]... -- COMMAND [ARG...]
#
# Everything happens in a private mount namespace (unshare -m, private
# propagation): /proc, /sys, /dev, /dev/pts, /tmp (a fresh tmpfs) and the bind
# mounts (DST defaults to SRC) vanish with the command, nothing stays mounted.
# The environment is cleared (env -i): the host's NODE_EXTRA_CA_CERTS and the
# like would otherwise leak in. resolv.conf is copied in so npm/apt can resolve.
# The command's exit status is returned.
set -euo pipefail
[[ $# -ge 3 ]] || { echo "usage: run-in.sh ROOT [--bind SRC[:DST]]... [--env K=V]... -- COMMAND..." >&2; exit 2; }
root=$(cd "$1" && pwd)
shift
[[ -f $root/.unixsock-root ]] || { echo "run-in: $root was not made by make-root.sh" >&2; exit 2; }
binds=() envs=()
while [[ $# -gt 0 && $1 != -- ]]; do
  case $1 in
    --bind) binds+=("$2"); shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    *) echo "run-in: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ ${1:-} == -- ]] || { echo "run-in: missing -- before the command" >&2; exit 2; }
shift
if [[ -f /etc/resolv.conf ]]; then cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true; fi

# the inner script runs as root in the new namespace; arguments pass through the environment-free argv
# shellcheck disable=SC2016 # expanded by the inner bash, not here
inner='
set -e
root=$1; nb=$2; shift 2
mount --make-rprivate /
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mkdir -p "$root/tmp"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
i=0
while [ $i -lt "$nb" ]; do
  spec=$1; shift; i=$((i + 1))
  src=${spec%%:*}; dst=${spec#*:}
  [ "$dst" = "$spec" ] && dst=$src
  if [ -d "$src" ]; then mkdir -p "$root$dst"; else mkdir -p "$(dirname "$root$dst")"; touch "$root$dst"; fi
  mount --rbind "$src" "$root$dst"
done
exec chroot "$root" "$@"
'
exec unshare -m --propagation private sh -c "$inner" sh "$root" "${#binds[@]}" "${binds[@]}" \
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb \
  "${envs[@]}" "$@"
