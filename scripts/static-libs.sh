#!/usr/bin/env bash
# Rebuild libbpf, libelf and zlib as position-independent static libraries from
# Debian's source packages (Debian's own .a files are not -fPIC, so they cannot
# be linked into a Node addon). Output: build/deps/{include,lib}.
# libelf.a comes with elfutils' internal libeu.a, which elfutils >= 0.192
# (Debian 13) needs (eu_search_tree_init); the addon links both.
# Usage: static-libs.sh [ARCH]   ARCH: x64 (this machine, the default) or arm64, cross-built
# with Debian's aarch64-linux-gnu toolchain from the same sources into build/arm64/deps.
# Idempotent: does nothing when OUT/lib/libbpf.a, libelf.a, libeu.a and libz.a exist.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work="$root/build/deps-src"
step() { printf 'static-libs: %s\n' "$*" >&2; }
fail() { printf 'static-libs: %s\n' "$*" >&2; exit 1; }
case ${1:-x64} in
  x64) out="$root/build/deps" host="" bwork=$work ;;
  arm64) out="$root/build/arm64/deps" host=aarch64-linux-gnu bwork="$work/arm64" ;;
  *) fail "unknown architecture '$1' (x64 or arm64)" ;;
esac
if [[ -f "$out/lib/libbpf.a" && -f "$out/lib/libelf.a" && -f "$out/lib/libeu.a" && -f "$out/lib/libz.a" && -f "$out/include/bpf/libbpf.h" ]]; then
  exit 0
fi
if [[ -n $host ]]; then
  command -v "$host-gcc" >/dev/null || fail "$host-gcc is missing (apt-get install g++-aarch64-linux-gnu, or bash scripts/deps.sh)"
fi
mkdir -p "$work/apt/lists/partial" "$out/lib" "$out/include"

# A private deb-src list made from the machine's own apt sources, so the
# system's apt configuration is never touched.
. "$root/scripts/lib/debian-mirror.sh"
debian_mirror || fail "cannot find the machine's apt source URIs to fetch libbpf/elfutils sources"
uris=$MIRROR_URI codename=$MIRROR_SUITE
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -f $keyring ]] || keyring=/usr/share/keyrings/ubuntu-archive-keyring.gpg
components=main
grep -qi ubuntu /etc/os-release && components="main universe"
mkdir -p "$work/apt/sources"
cat > "$work/apt/sources/src.sources" <<SRC
Types: deb-src
URIs: $uris
Suites: $codename
Components: $components
Signed-By: $keyring
SRC
aptopts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$work/apt/sources"
         -o "Dir::State::Lists=$work/apt/lists" -o Debug::NoLocking=1)
cd "$work"
missing=()
for pkg in libbpf elfutils zlib; do ls -d "$pkg"-*/ >/dev/null 2>&1 || missing+=("$pkg"); done
if ((${#missing[@]})); then
  step "fetching ${missing[*]} sources ($uris $codename)"
  apt-get -q "${aptopts[@]}" update >apt-update.log 2>&1 || fail "apt-get update for deb-src failed (see $work/apt-update.log)"
  if ! apt-get -q "${aptopts[@]}" source --download-only "${missing[@]}" >apt-source.log 2>&1; then
    # A mirror may list a stable point update's source (zlib 1:1.3.dfsg+really1.3.1-1+deb13u1 here)
    # without having its files yet (404): the release's own version still sits beside it in the pool.
    for pkg in "${missing[@]}"; do
      ls "$pkg"_*.dsc >/dev/null 2>&1 && continue
      apt-get -q "${aptopts[@]}" source --download-only "$pkg" >>apt-source.log 2>&1 && continue
      read -r url name _ < <(apt-get -q "${aptopts[@]}" source --print-uris "$pkg" 2>/dev/null | grep "\.dsc' ") || true
      url=${url//\'/}; ver=${name#"$pkg"_}; ver=${ver%.dsc}; base=${ver%+deb[0-9]*u[0-9]*}
      [[ -n $url && $base != "$ver" ]] || fail "apt-get source failed (see $work/apt-source.log)"
      step "the $pkg $ver source is missing from the mirror: using $base"
      dir=${url%/*}
      curl -fsS -o "${pkg}_$base.dsc" "$dir/${pkg}_${base//+/%2b}.dsc" || fail "cannot fetch ${pkg}_$base.dsc from $dir"
      while read -r f; do
        [[ -f $f ]] || curl -fsS -o "$f" "$dir/${f//+/%2b}" || fail "cannot fetch $f from $dir"
      done < <(awk '/^Files:/{on=1; next} /^[^ ]/ || NF < 3 {on=0} on {print $3}' "${pkg}_$base.dsc")
    done
  fi
  for pkg in "${missing[@]}"; do for dsc in "$pkg"_*.dsc; do dpkg-source -x --no-check "$dsc" >/dev/null; done; done
fi
# shellcheck disable=SC2012 # folders named by Debian versions: ls's sorted listing is what is wanted
first_dir() { ls -d "$1"-*/ | head -1; }
elf=$(first_dir elfutils); bpf=$(first_dir libbpf); zl=$(first_dir zlib)
if [[ -n $host ]]; then
  # a cross build configures and builds in trees of its own, unpacked afresh from the same
  # sources (this machine's build configures in place)
  mkdir -p "$bwork"
  for pkg in elfutils zlib; do
    dscs=("$work/${pkg}"_*.dsc) trees=("$work/$pkg"-*/)
    d=$(basename "${trees[0]}")
    [[ -d $bwork/$d ]] || dpkg-source -x --no-check "${dscs[0]}" "$bwork/$d" >/dev/null || fail "unpacking ${dscs[0]} failed"
  done
  cd "$bwork"
  export CC="$host-gcc" CXX="$host-g++" AR="$host-ar" RANLIB="$host-ranlib"
fi

# zlib first: a cross build of libelf and libbpf finds its header and library here
# (this machine's own build uses the system's zlib.h; the addon links this libz.a either way)
if [[ ! -f "$out/lib/libz.a" ]]; then
  step "building libz.a (-fPIC${host:+, $host})"
  (cd "$zl" && CHOST=$host CFLAGS="-O2 -fPIC" ./configure --static >configure.log 2>&1 && make -j"$(nproc)" libz.a >make.log 2>&1) \
    || fail "building zlib failed (see $bwork/$zl/configure.log and make.log)"
  cp "$zl/libz.a" "$out/lib/"
  [[ -z $host ]] || cp "$zl/zlib.h" "$zl/zconf.h" "$out/include/"
fi
if [[ ! -f "$out/lib/libelf.a" || ! -f "$out/lib/libeu.a" ]]; then
  step "building libelf.a (-fPIC${host:+, $host})"
  (cd "$elf" && { [[ -f config.status ]] || CFLAGS="-O2 -fPIC" CPPFLAGS="${host:+-I$out/include}" LDFLAGS="${host:+-L$out/lib}" \
      ./configure ${host:+--host=$host} --disable-debuginfod --disable-libdebuginfod \
      --without-zstd --without-bzlib --without-lzma --disable-nls >configure.log 2>&1; } \
    && make -C lib -j"$(nproc)" >make.log 2>&1 && make -C libelf -j"$(nproc)" libelf.a >>make.log 2>&1) \
    || fail "building libelf failed (see $bwork/$elf/configure.log and make.log)"
  cp "$elf/libelf/libelf.a" "$elf/lib/libeu.a" "$out/lib/"
  cp "$elf/libelf/libelf.h" "$elf/libelf/gelf.h" "$elf/libelf/nlist.h" "$out/include/"
fi
if [[ ! -f "$out/lib/libbpf.a" ]]; then
  step "building libbpf.a (-fPIC${host:+, $host})"
  obj="$bwork/libbpf-obj"
  mkdir -p "$obj"
  make -C "$work/$bpf/src" -j"$(nproc)" BUILD_STATIC_ONLY=1 OBJDIR="$obj" CFLAGS="-O2 -fPIC -I$out/include" \
    ${host:+CC=$CC AR=$AR} >"$bwork/libbpf-make.log" 2>&1 || fail "building libbpf failed (see $bwork/libbpf-make.log)"
  make -C "$work/$bpf/src" BUILD_STATIC_ONLY=1 OBJDIR="$obj" PREFIX= DESTDIR="$out" LIBDIR=/lib INCLUDEDIR=/include \
    install_headers >>"$bwork/libbpf-make.log" 2>&1 || fail "installing libbpf headers failed"
  cp "$obj/libbpf.a" "$out/lib/"
fi
step "ok: $out/lib/libbpf.a $out/lib/libelf.a $out/lib/libeu.a $out/lib/libz.a"
