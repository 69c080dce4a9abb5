#!/usr/bin/env bash
# Installs what a fresh Debian 12 or 13 machine (Ubuntu: untested) lacks to build and test
# unixsock, and only that. Never prompts. Needs root (or sudo).
#   build: clang llvm bpftool libelf-dev zlib1g-dev dpkg-dev build-essential
#          (+ m4 flex bison gawk for elfutils' configure), libcap2-bin (setcap)
#   capture/decode: tshark
#   programs the tests drive: socat curl xvfb x11-utils dbus postgresql strace tcpdump
#          openssh-server (an sshd for the sshdump test; not started as a service)
#   the GUI test (test/e2e/gui.test.ts): wireshark (the Qt GUI: a package of its own on Debian 13,
#          on 12 a metapackage for wireshark-qt) xdotool imagemagick
#   kernel matrix (test/kernels): qemu-system-x86 busybox-static cpio xz-utils debian-archive-keyring
#   the arm64 build and its kernel matrix: g++-aarch64-linux-gnu (cross compiler and arm64 libc),
#          qemu-user (qemu-aarch64 runs the arm64 Node here: the addon check, the SEA blob;
#          12 MB against qemu-user-static's 63 MB),
#          qemu-system-arm (qemu-system-aarch64 for the arm64 guests)
#   other Debian releases' userland (test/chroot): mmdebstrap
#   npm run lint (scripts/lint.sh): clang-format shellcheck lua-check (luacheck); about 3 MB
#   containers (test/e2e/containers.test.ts): docker.io (dockerd and the CLI; the tests start
#          their own dockerd, no service is enabled here), busybox-static above for the image
set -euo pipefail
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "deps: run as root (or install sudo)" >&2; exit 1; }
  SUDO=sudo
fi
pkgs=(clang llvm libelf-dev zlib1g-dev dpkg-dev build-essential m4 flex bison gawk pkg-config
      libcap2-bin tshark socat curl xvfb xauth x11-utils x11-apps dbus postgresql strace tcpdump
      wireshark xdotool imagemagick
      ca-certificates openssh-server qemu-system-x86 busybox-static cpio xz-utils debian-archive-keyring mmdebstrap
      clang-format shellcheck lua-check
      docker.io qemu-system-arm)
# the arm64 cross build (an arm64 machine builds natively)
[[ $(uname -m) != x86_64 ]] || pkgs+=(g++-aarch64-linux-gnu qemu-user)
if grep -qi ubuntu /etc/os-release; then
  pkgs+=(linux-tools-common "linux-tools-$(uname -r)")
else
  pkgs+=(bpftool)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  $SUDO apt-get update -q >/dev/null
  # tshark asks whether non-root users may capture: answer for it (we do not need dumpcap setuid)
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
# Node.js 20 or newer builds the single executable (SEA)
if ! command -v node >/dev/null || (( $(node -p 'process.versions.node.split(".")[0]') < 20 )); then
  echo "deps: Node.js >= 20 is needed (found $(node --version 2>/dev/null || echo none)); install it from your distribution or nodesource" >&2
  exit 1
fi
# tracepoint attach needs tracefs; the capture mounts it itself when it can, but mount it for the tests too
if [[ ! -d /sys/kernel/tracing/events ]] && [[ -d /sys/kernel/tracing ]]; then
  $SUDO mount -t tracefs none /sys/kernel/tracing 2>/dev/null || true
fi
echo "deps: ok"
