#!/usr/bin/env bash
# Downloads the kernels of the test matrix as Debian packages and unpacks their
# vmlinuz, and the modules a guest needs to mount this machine's root
# filesystem over virtio-9p with an overlay (9p, 9pnet_virtio, overlay, and
# virtio_pci where it is a module), into a cache directory that survives
# between runs:
#   debian-6.1   the current linux-image-amd64 of Debian 12 (bookworm, -security)
#   debian-6.12  the linux-image-amd64 of bookworm-backports
# or, with --arch arm64, the same two of linux-image-arm64 (debian-6.1-arm64,
# debian-6.12-arm64), whose guests (qemu-system-aarch64) cannot boot this
# machine's root: they get busybox and the libraries beside the kernels, in
# the cache's arm64-userland/ (make-initramfs.sh --arch arm64 packs them).
# A private apt configuration (its own sources and lists) is used, so the
# system's apt setup is never touched. Prints one line per kernel:
#   NAME VERSION PATH-TO-VMLINUZ
# with the modules beside vmlinuz in modules/ (decompressed, for busybox
# insmod) and modules/order: their names in the order they must be loaded.
# Usage: fetch-kernels.sh [--arch amd64|arm64] [CACHE_DIR]   (default $UNIXSOCK_KERNEL_CACHE or ~/.cache/unixsock/kernels)
set -euo pipefail
arch=amd64
if [[ ${1:-} == --arch ]]; then arch=${2:?}; shift 2; fi
[[ $arch == amd64 || $arch == arm64 ]] || { echo "fetch-kernels: --arch amd64 or arm64" >&2; exit 2; }
suffix=${arch/amd64/}
suffix=${suffix:+-$suffix}
cache=${1:-${UNIXSOCK_KERNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/unixsock/kernels}}
# the mirror this machine's apt uses (nothing here names a host)
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../scripts/lib/debian-mirror.sh
# shellcheck source=../../scripts/lib/debian-mirror.sh
. "$here/../../scripts/lib/debian-mirror.sh"
debian_mirror || true
mirror=${UNIXSOCK_DEBIAN_MIRROR:-$MIRROR_URI}
[[ -n $mirror ]] || { printf 'fetch-kernels: cannot find a Debian mirror in this machine'"'"'s apt sources (set UNIXSOCK_DEBIAN_MIRROR)\n' >&2; exit 1; }
# its security archive: the machine's own entry for it, else beside the mirror
security=${UNIXSOCK_DEBIAN_SECURITY:-${MIRROR_SECURITY_URI:-${mirror%/}-security}}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
fail() { printf 'fetch-kernels: %s\n' "$*" >&2; exit 1; }
[[ -f $keyring ]] || fail "$keyring is missing (apt-get install debian-archive-keyring)"
# each architecture has its own apt state (lists, archives)
aptdir=$cache/apt${suffix}
mkdir -p "$aptdir/lists/partial" "$aptdir/sources" "$aptdir/archives/partial"

cat > "$aptdir/sources/kernels.sources" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm bookworm-backports
Components: main
Architectures: $arch
Signed-By: $keyring

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Architectures: $arch
Signed-By: $keyring
SRC
apt=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$aptdir/sources"
     -o "Dir::State::Lists=$aptdir/lists" -o "Dir::Cache=$aptdir" -o Dir::Etc::Preferences=/dev/null
     -o Dir::Etc::PreferencesParts=/dev/null -o "APT::Architecture=$arch" -o "APT::Architectures=$arch"
     -o Debug::NoLocking=1)

# The package lists are refreshed at most once a day; a cached kernel is used
# as it is when the mirror cannot be reached.
stamp="$aptdir/lists/.updated"
if [[ ! -f $stamp ]] || [[ -n $(find "$stamp" -mmin +1440 2>/dev/null) ]]; then
  if apt-get -q "${apt[@]}" update >"$cache/apt-update$suffix.log" 2>&1; then
    touch "$stamp"
  elif ! ls "$cache"/*"$suffix"/*/vmlinuz >/dev/null 2>&1; then
    fail "apt-get update failed (see $cache/apt-update$suffix.log)"
  fi
fi

# NAME RELEASE: the image package that linux-image-ARCH of RELEASE depends on
resolve() {
  apt-cache "${apt[@]}" -o "APT::Default-Release=$1" depends "linux-image-$arch" 2>/dev/null |
    awk '$1=="Depends:" && $2 ~ /^linux-image-[0-9]/ && !p {p = $2} END {print p}'
}

# The modules the guest loads, decompressed into DIR/modules, and DIR/modules/order:
# each after the modules its depends= names (read from the .modinfo strings; the
# package has no modules.dep). A module built into the kernel has no file: skipped.
modules() {
  local dir=$1 m f
  mkdir -p "$dir/modules"
  declare -A seen=()
  visit() {
    local name=$1 dep
    [[ -z ${seen[$name]:-} ]] || return 0
    seen[$name]=1
    f=$(find "$dir/lib/modules" -name "$name.ko" -o -name "$name.ko.xz" -o -name "$name.ko.zst" | head -1)
    [[ -n $f ]] || return 0
    case $f in
      *.xz) xz -dc "$f" > "$dir/modules/$name.ko" ;;
      *.zst) zstd -qdc "$f" > "$dir/modules/$name.ko" ;;
      *) cp "$f" "$dir/modules/$name.ko" ;;
    esac
    for dep in $(tr '\0' '\n' < "$dir/modules/$name.ko" | sed -n 's/^depends=//p' | tr ',' ' '); do
      visit "${dep//-/_}"
    done
    echo "$name" >> "$dir/modules/order"
  }
  : > "$dir/modules/order"
  for m in virtio_pci 9pnet_virtio 9p overlay; do visit "$m"; done
  grep -qx 9p "$dir/modules/order" || fail "no 9p module in the package"
}

fetch() {
  local name=$1 release=$2 pkg dir
  pkg=$(resolve "$release")
  if [[ -z $pkg ]]; then
    # offline: reuse what the cache already holds
    # shellcheck disable=SC2012 # folders named by kernel releases: ls's sorted listing, the last one
    dir=$(ls -d "$cache/$name"/*/ 2>/dev/null | tail -1)
    [[ -n $dir && -f $dir/vmlinuz ]] || fail "cannot resolve linux-image-$arch in $release"
    echo "$name $(basename "$dir") ${dir%/}/vmlinuz"
    return
  fi
  local ver=${pkg#linux-image-}
  dir="$cache/$name/$ver"
  if [[ ! -f $dir/vmlinuz || ! -f $dir/modules/order ]]; then
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    (cd "$dir.tmp" && apt-get -q "${apt[@]}" -t "$release" download "$pkg" >download.log 2>&1) ||
      fail "apt-get download $pkg failed (see $dir.tmp/download.log)"
    dpkg-deb --fsys-tarfile "$dir.tmp"/"${pkg}"_*.deb | tar -x -C "$dir.tmp" --wildcards './boot/vmlinuz-*' \
      './lib/modules/*/kernel/fs/*' './lib/modules/*/kernel/net/9p/*' './lib/modules/*/kernel/drivers/virtio/*'
    mv "$dir.tmp"/boot/vmlinuz-* "$dir.tmp/vmlinuz"
    modules "$dir.tmp"
    rm -rf "$dir.tmp"/boot "$dir.tmp"/lib "$dir.tmp"/*.deb
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
    # keep only the newest version of each kernel
    for old in "$cache/$name"/*/; do [[ ${old%/} == "$dir" ]] || rm -rf "$old"; done
  fi
  echo "$name $ver $dir/vmlinuz"
}

fetch "debian-6.1$suffix" bookworm-security
fetch "debian-6.12$suffix" bookworm-backports

# arm64: busybox for the initramfs (this machine's is amd64); printed as
#   busybox VERSION PATH
if [[ $arch == arm64 ]]; then
  ver=$(apt-cache "${apt[@]}" policy busybox-static 2>/dev/null | awk '$1 == "Candidate:" && $2 != "(none)" {print $2}')
  ver=${ver//:/_}
  if [[ -z $ver ]]; then
    # offline: reuse what the cache already holds
    bb=$(find "$cache/arm64-userland" -name busybox 2>/dev/null | tail -1)
    [[ -n $bb ]] || fail "cannot resolve busybox-static for arm64"
    ver=$(basename "$(dirname "$bb")")
  fi
  dir="$cache/arm64-userland/$ver"
  if [[ ! -x $dir/busybox ]]; then
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    (cd "$dir.tmp" && apt-get -q "${apt[@]}" download busybox-static >download.log 2>&1) ||
      fail "apt-get download busybox-static:arm64 failed (see $dir.tmp/download.log)"
    dpkg-deb --fsys-tarfile "$dir.tmp"/busybox-static_*.deb | tar -x -C "$dir.tmp" ./bin/busybox
    mv "$dir.tmp/bin/busybox" "$dir.tmp/busybox"
    rm -rf "$dir.tmp"/bin "$dir.tmp"/*.deb "$dir.tmp/download.log"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
    for old in "$cache/arm64-userland"/*/; do [[ ${old%/} == "$dir" ]] || rm -rf "$old"; done
  fi
  echo "busybox $ver $dir/busybox"
fi
