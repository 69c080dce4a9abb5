#!/usr/bin/env bash
# Install unixsock into Wireshark: the extcap executable, the Lua dissector and
# the configuration profile "unixsock".
#
#   scripts/install-extcap.sh             for the current user
#   scripts/install-extcap.sh --system    for everyone (root): group wireshark,
#                                         mode 0750, file capabilities, like dumpcap
#       --own-uid-only                    with --system: members capture only messages
#                                         their own uid sends or receives (root: all)
#       --extcap-dir DIR                  with --system: into DIR instead of Wireshark's
#                                         folder, without the Lua dissector (sshdump hosts, tests)
#   scripts/install-extcap.sh --uninstall [--system [--extcap-dir DIR]]
#
# Idempotent: running it again replaces what it installed. It asks
# `tshark -G folders` where this Wireshark looks for extcaps and Lua plugins.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=user action=install build=1 members=everything dest=""
while (($#)); do
  case $1 in
    --system) mode=system ;;
    --own-uid-only) members=own-uid ;;
    --extcap-dir) dest=${2:?--extcap-dir needs a folder}; shift ;;
    --uninstall) action=uninstall ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-extcap: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "install-extcap: $*" >&2; exit 1; }
if [[ $mode != system && ( $members != everything || -n $dest ) ]]; then die "--own-uid-only and --extcap-dir go with --system"; fi
if [[ $mode == system && $(id -u) -ne 0 ]]; then die "--system needs root (sudo $0)"; fi
if [[ -n $dest ]]; then
  # only the executable, its engine and the policy (no Wireshark needed)
  mkdir -p "$dest"
  extcap_dir=$(cd "$dest" && pwd) lua_dir="" profile_dir="" doc_dir="" manifest="$extcap_dir/.unixsock-installed"
else
command -v tshark >/dev/null || die "tshark is not installed (apt-get install tshark); it tells where Wireshark looks for extcaps"
folders=$(tshark -G folders 2>/dev/null)
# (no pipe into awk: awk leaving at the first match could kill the writer with SIGPIPE, fatal under pipefail)
field() { awk -F'\t' -v k="$1" 'index($1, k) == 1 {print $2; exit}' <<<"$folders"; }
personal_conf=$(field "Personal configuration:")
if [[ $mode == system ]]; then
  extcap_dir=$(field "Global Extcap path:"); [[ -n $extcap_dir ]] || extcap_dir=$(field "Extcap path:")
  lua_dir=$(field "Global Lua Plugins:")
  profile_dir="$(field "Global configuration:")/profiles/unixsock"
  manifest=/var/lib/unixsock/installed
  doc_dir=/usr/share/doc/unixsock
else
  extcap_dir=$(field "Personal Extcap path:")
  # Wireshark 4.0 has no personal extcap entry: it reads <personal configuration>/extcap
  [[ -n $extcap_dir ]] || extcap_dir="$personal_conf/extcap"
  lua_dir=$(field "Personal Lua Plugins:")
  profile_dir="$personal_conf/profiles/unixsock"
  manifest="${XDG_DATA_HOME:-$HOME/.local/share}/unixsock/installed"
  doc_dir=$(dirname "$manifest")
fi
[[ -n $extcap_dir && -n $lua_dir ]] || die "cannot read the extcap and Lua plugin folders from 'tshark -G folders'"
fi

if [[ $action == uninstall ]]; then
  if [[ -f $manifest ]]; then
    while IFS= read -r f; do [[ -n $f ]] && rm -f -- "$f" && echo "removed $f"; done < "$manifest"
    rm -f "$manifest"
    [[ -z $profile_dir ]] || rmdir "$profile_dir" 2>/dev/null || true
    [[ -z $doc_dir ]] || rmdir "$doc_dir" 2>/dev/null || true
  else
    echo "install-extcap: nothing recorded in $manifest; nothing to remove"
  fi
  exit 0
fi

if [[ $build == 1 ]]; then
  make -C "$root" -s extcap/unixsock || die "build failed (run 'make' in $root to see why)"
fi
[[ -x $root/extcap/unixsock ]] || die "extcap/unixsock is not built (run 'npm run build')"

mkdir -p "$extcap_dir" "$(dirname "$manifest")"
[[ -z $lua_dir ]] || mkdir -p "$lua_dir"
exe="$extcap_dir/unixsock" lua="${lua_dir:+$lua_dir/unixsock.lua}" installed=()
if [[ $mode == system ]]; then
  # The engine, root's and not executable (Wireshark runs every executable of
  # its extcap folder): with capabilities the executable loads only this copy,
  # after checking that it and every folder up to / are root's and writable by
  # root only (see docs/threat-model.md).
  [[ -f $root/build/unixsock.node ]] || die "build/unixsock.node is not built (run 'npm run build')"
  for d in "$extcap_dir" $(p=$extcap_dir; while [[ $p != / ]]; do p=$(dirname "$p"); echo "$p"; done); do
    [[ $(stat -c %u "$d") == 0 && $(( 0$(stat -c %a "$d") & 022 )) == 0 ]] ||
      die "$d must belong to root and be writable by root only: the executable refuses to load its engine below it"
  done
  install -o root -g root -m 0644 "$root/build/unixsock.node" "$extcap_dir/unixsock.node.new"
  mv -f "$extcap_dir/unixsock.node.new" "$extcap_dir/unixsock.node"
  # what members see (read only from this root-owned file, next to the executable)
  printf '# written by install-extcap.sh --system%s\n# members = everything | own-uid (only messages their own uid sends or receives; root sees all)\nmembers = %s\n' \
    "$([[ $members == own-uid ]] && echo ' --own-uid-only')" "$members" > "$extcap_dir/unixsock.policy.new"
  chown root:root "$extcap_dir/unixsock.policy.new" && chmod 0644 "$extcap_dir/unixsock.policy.new"
  mv -f "$extcap_dir/unixsock.policy.new" "$extcap_dir/unixsock.policy"
  installed+=("$extcap_dir/unixsock.node" "$extcap_dir/unixsock.policy")
fi
install -m 0755 "$root/extcap/unixsock" "$exe.new" && mv -f "$exe.new" "$exe"
[[ -z $lua ]] || install -m 0644 "$root/wireshark/unixsock.lua" "$lua"
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
  echo "installed $extcap_dir/unixsock.node (the engine it loads) and $extcap_dir/unixsock.policy (members = $members)"
else
  echo "installed $exe"
  [[ $(id -u) -eq 0 ]] || echo "note: capturing needs root or a --system install (file capabilities)"
fi
# Wireshark run as root skips personal Lua plugins from 4.4 on (Debian's 4.0
# sets run_user_scripts_when_superuser in its init.lua; 4.4+ ship none), with
# no message: ask this Wireshark whether it loads the copy just installed, and
# if not, put it in the global Lua plugin folder, which root's Wireshark reads.
if [[ -n $lua && $mode == user && $(id -u) -eq 0 ]] && ! grep -qF "$lua" <<<"$(tshark -G plugins 2>/dev/null)"; then
  global_lua=$(field "Global Lua Plugins:")
  [[ -n $global_lua ]] || die "this Wireshark skips personal Lua plugins for root and 'tshark -G folders' names no global one"
  rm -f "$lua"
  lua="$global_lua/unixsock.lua"
  mkdir -p "$global_lua"
  install -m 0644 "$root/wireshark/unixsock.lua" "$lua"
  echo "installed $lua (the global Lua plugin folder: this Wireshark, run as root, skips personal Lua plugins)"
elif [[ -n $lua ]]; then
  echo "installed $lua"
fi
# the configuration profile "unixsock": packet list columns From, To, Socket path
if [[ -n $profile_dir ]]; then
  mkdir -p "$profile_dir"
  installed+=("$profile_dir/preferences")
  install -m 0644 "$root/wireshark/profile/preferences" "$profile_dir/preferences"
  echo "installed $profile_dir/preferences (choose the profile \"unixsock\" in Wireshark's status bar)"
fi
# the README: what the Help button of the interface opens (src/extcap.ts helpFile)
if [[ -n $doc_dir ]]; then
  mkdir -p "$doc_dir"
  install -m 0644 "$root/README.md" "$doc_dir/README.md"
  installed+=("$doc_dir/README.md")
fi
# one path for every Wireshark version (the global extcap folder moved in 4.6): sshdump's remote command
if [[ $mode == system && -z $dest ]]; then
  ln -sfn "$exe" /usr/local/bin/unixsock && echo "linked /usr/local/bin/unixsock -> $exe"
  installed+=(/usr/local/bin/unixsock)
fi
printf '%s\n' "$exe" ${lua:+"$lua"} "${installed[@]}" > "$manifest"
