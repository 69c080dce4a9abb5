#!/usr/bin/env bash
# Debian 13 (trixie) as a new user meets unixsock, on this machine's kernel:
# a minimal root with `apt-get install nodejs npm git` (Debian's own Node),
# a fresh clone of this repository's HEAD under /root (mode 0700), then
#   bash scripts/quickstart.sh     must exit 0 with curl's request decoded,
#   the e2e capture, dissector and verifier tests, with CI=true.
# The root is cached by make-root.sh (the packages the quick start installs
# stay in it: a warm run skips apt), npm's cache in ~/.cache/unixsock/npm-deb13.
# Prints the time of each part. Usage: test/chroot/debian13.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${UNIXSOCK_CACHE:-$HOME/.cache/unixsock}
t0=$SECONDS
lap() { echo "debian13: $1 ($((SECONDS - t0)) s so far)"; }
chroot=$(bash "$here/make-root.sh" deb13-newuser trixie nodejs npm git ca-certificates)
lap "root ready: $chroot"
# the clone's source: this repository's committed HEAD, as a bare repository the root can read
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q --bare --no-local "$repo" "$work/unixsock.git"
mkdir -p "$cache/npm-deb13"
status=0
bash "$here/run-in.sh" "$chroot" --bind "$work/unixsock.git:/srv/unixsock.git" --bind "$cache/npm-deb13:/root/.npm" \
  --env CI=true --env UNIXSOCK_WIRESHARKS=host -- bash -c '
set -uo pipefail
t0=$SECONDS
echo "debian13: $(. /etc/os-release; echo "$PRETTY_NAME"), node $(node --version), npm $(npm --version)"
rm -rf /root/unixsock
git clone -q /srv/unixsock.git /root/unixsock && cd /root/unixsock || exit 1
qs=0
bash scripts/quickstart.sh 2>&1 | tee /tmp/quickstart.log || qs=$?
echo "debian13: quickstart exit $qs after $((SECONDS - t0)) s"
if [[ $qs -eq 0 ]] && ! grep -q "GET /containers/json" /tmp/quickstart.log; then
  echo "debian13: the quick start printed no decoded request from curl" >&2; qs=1
fi
echo "debian13: clang $(clang --version | sed -n "1s/.*version \([0-9.]*\).*/\1/p"), elfutils $(ls -d build/deps-src/elfutils-*/ | sed "s/.*elfutils-//; s,/,,"), libbpf $(ls -d build/deps-src/libbpf-[0-9]*/ | sed "s/.*libbpf-//; s,/,,"), $(tshark --version 2>/dev/null | head -1)"
tests=0
[[ -x extcap/unixsock ]] && { node scripts/run-tests.mjs test/e2e/capture.test.ts test/e2e/dissector.test.ts test/e2e/verifier.test.ts || tests=$?; } || tests=1
echo "debian13: tests exit $tests after $((SECONDS - t0)) s"
exit $(( qs || tests ))
' || status=$?
lap "done, exit $status"
exit $status
