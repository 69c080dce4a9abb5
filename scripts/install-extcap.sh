#!/usr/bin/env bash
# Install unixsock into Wireshark: the extcap executable and the Lua dissector.
#
#   scripts/install-extcap.sh             for the current user
#   scripts/install-extcap.sh --system    for everyone (root): group wireshark,
#                                         mode 0750, file capabilities, like dumpcap
#   scripts/install-extcap.sh --uninstall [--system]
#
# Idempotent: running it again replaces what it installed. It asks
# `tshark -G folders` where this Wireshark looks for extcaps and Lua plugins.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=user action=install build=1 link=
for a in "$@"; do
  case $a in
    --system) mode=system ;;
    --uninstall) action=uninstall ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-extcap: unknown option $a (see --help)" >&2; exit 2 ;;
  esac
done
die() { echo "install-extcap: $*" >&2; exit 1; }
command -v tshark >/dev/null || die "tshark is not installed (apt-get install tshark); it tells where Wireshark looks for extcaps"
if [[ $mode == system && $(id -u) -ne 0 ]]; then die "--system needs root (sudo $0 $*)"; fi

folders=$(tshark -G folders 2>/dev/null)
# (no pipe into awk: awk leaving at the first match could kill the writer with SIGPIPE, fatal under pipefail)
field() { awk -F'\t' -v k="$1" 'index($1, k) == 1 {print $2; exit}' <<<"$folders"; }
personal_conf=$(field "Personal configuration:")
if [[ $mode == system ]]; then
  extcap_dir=$(field "Global Extcap path:"); [[ -n $extcap_dir ]] || extcap_dir=$(field "Extcap path:")
  lua_dir=$(field "Global Lua Plugins:")
  manifest=/var/lib/unixsock/installed
  doc_dir=/usr/share/doc/unixsock
else
  extcap_dir=$(field "Personal Extcap path:")
  # Wireshark 4.0 has no personal extcap entry: it reads <personal configuration>/extcap
  [[ -n $extcap_dir ]] || extcap_dir="$personal_conf/extcap"
  lua_dir=$(field "Personal Lua Plugins:")
  manifest="${XDG_DATA_HOME:-$HOME/.local/share}/unixsock/installed"
  doc_dir=$(dirname "$manifest")
fi
[[ -n $extcap_dir && -n $lua_dir ]] || die "cannot read the extcap and Lua plugin folders from 'tshark -G folders'"

if [[ $action == uninstall ]]; then
  if [[ -f $manifest ]]; then
    while IFS= read -r f; do [[ -n $f ]] && rm -f -- "$f" && echo "removed $f"; done < "$manifest"
    rm -f "$manifest"
    rmdir "$doc_dir" 2>/dev/null || true
  else
    echo "install-extcap: nothing recorded in $manifest; nothing to remove"
  fi
  exit 0
fi

if [[ $build == 1 ]]; then
  make -C "$root" -s extcap/unixsock || die "build failed (run 'make' in $root to see why)"
fi
[[ -x $root/extcap/unixsock ]] || die "extcap/unixsock is not built (run 'npm run build')"

mkdir -p "$extcap_dir" "$lua_dir" "$(dirname "$manifest")" "$doc_dir"
exe="$extcap_dir/unixsock" lua="$lua_dir/unixsock.lua" readme="$doc_dir/README.md"
# the README is what Wireshark's Help button on the interface opens (src/extcap.ts helpFile)
install -m 0644 "$root/README.md" "$readme"
install -m 0755 "$root/extcap/unixsock" "$exe.new" && mv -f "$exe.new" "$exe"
install -m 0644 "$root/wireshark/unixsock.lua" "$lua"
if [[ $mode == system ]]; then
  getent group wireshark >/dev/null || groupadd --system wireshark
  chgrp wireshark "$exe"
  chmod 0750 "$exe"
  caps=cap_bpf,cap_perfmon
  # kernels before 5.8 know neither capability: BPF needs CAP_SYS_ADMIN there
  kmaj=$(uname -r | cut -d. -f1) kmin=$(uname -r | cut -d. -f2)
  if (( kmaj < 5 || (kmaj == 5 && kmin < 8) )); then caps=cap_sys_admin; fi
  command -v setcap >/dev/null || die "setcap is missing (apt-get install libcap2-bin)"
  setcap "$caps+ep" "$exe" || die "setcap $caps on $exe failed (does the filesystem support file capabilities?)"
  echo "installed $exe (group wireshark, 0750, $caps): members of 'wireshark' can capture (usermod -aG wireshark USER)"
  # one path for every Wireshark version (the global extcap folder moved in 4.6): sshdump's remote command
  link=/usr/local/bin/unixsock
  ln -sfn "$exe" "$link" && echo "linked $link -> $exe"
else
  echo "installed $exe"
  [[ $(id -u) -eq 0 ]] || echo "note: capturing needs root or a --system install (file capabilities)"
fi
# Wireshark run as root skips personal Lua plugins from 4.4 on (Debian's 4.0
# sets run_user_scripts_when_superuser in its init.lua; 4.4+ ship none), with
# no message: ask this Wireshark whether it loads the copy just installed, and
# if not, put it in the global Lua plugin folder, which root's Wireshark reads.
if [[ $mode == user && $(id -u) -eq 0 ]] && ! grep -qF "$lua" <<<"$(tshark -G plugins 2>/dev/null)"; then
  global_lua=$(field "Global Lua Plugins:")
  [[ -n $global_lua ]] || die "this Wireshark skips personal Lua plugins for root and 'tshark -G folders' names no global one"
  rm -f "$lua"
  lua="$global_lua/unixsock.lua"
  mkdir -p "$global_lua"
  install -m 0644 "$root/wireshark/unixsock.lua" "$lua"
  echo "installed $lua (the global Lua plugin folder: this Wireshark, run as root, skips personal Lua plugins)"
else
  echo "installed $lua"
fi
printf '%s\n' "$exe" "$lua" "$readme" ${link:+"$link"} > "$manifest"
