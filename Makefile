# unixsock build: BPF object -> skeleton -> native addon -> TypeScript bundle -> single executable.
# `make` (or `npm run build`) from a clean clone; every step is incremental.
SHELL := /bin/bash
.DELETE_ON_ERROR:
B := build
CLANG ?= clang
BPFTOOL ?= $(shell command -v bpftool || ls /usr/sbin/bpftool 2>/dev/null)
# The single executable's base is Node's official binary for NODE_ARCH (x64,
# arm64), the npm package node-linux-$(NODE_ARCH) pinned with its integrity in
# package-lock.json: the same Node for every build, whatever the system's node
# is (Debian 13's is a stub linked to libnode.so, which cannot carry a SEA).
# The addon is compiled against that package's headers too.
# NODE_ARCH defaults to this machine's; another one is a cross build
# (`make NODE_ARCH=arm64` on x86_64: extcap/unixsock-arm64, everything else of
# it in build/arm64/), see CONTRIBUTING.md.
HOST_ARCH := $(shell node -p process.arch)
NODE_ARCH ?= $(HOST_ARCH)
BPF_ARCH_x64 := x86
BPF_ARCH_arm64 := arm64
TRIPLE_arm64 := aarch64-linux-gnu
ARCH := $(BPF_ARCH_$(NODE_ARCH))
ifeq ($(ARCH),)
$(error NODE_ARCH=$(NODE_ARCH): unixsock builds for x64 or arm64)
endif
ifeq ($(NODE_ARCH),$(HOST_ARCH))
O := $(B)
EXE := extcap/unixsock
NODE_BASE := node_modules/node-linux-$(NODE_ARCH)
ALL := $(EXE) $(O)/sockgen $(O)/sockgen-static $(O)/kfeatures $(O)/unixbench $(O)/verifier-stats
else
ifeq ($(TRIPLE_$(NODE_ARCH)),)
$(error NODE_ARCH=$(NODE_ARCH): no cross build from $(HOST_ARCH); build on such a machine)
endif
O := $(B)/$(NODE_ARCH)
EXE := extcap/unixsock-$(NODE_ARCH)
CROSS := $(TRIPLE_$(NODE_ARCH))-
CC := $(CROSS)gcc
# Node's binary for that architecture, fetched by its package-lock pin (npm ci installs only this machine's)
NODE_BASE := $(O)/node-linux-$(NODE_ARCH)
# runs that Node here (the addon check, the SEA blob): qemu user-mode emulation with the cross toolchain's libc
RUN := qemu-$(TRIPLE_$(NODE_ARCH):-linux-gnu=) -L /usr/$(TRIPLE_$(NODE_ARCH))
# the guests of the kernel matrix run them without any shared library
STATIC := -static
ALL := $(EXE) $(O)/sockgen $(O)/kfeatures
endif

all: $(ALL)

# one run builds both libraries (a stamp, so that make -j runs it once)
DEPS := $(O)/deps/.stamp
$(DEPS): scripts/static-libs.sh
	@bash scripts/static-libs.sh $(if $(CROSS),$(NODE_ARCH))
	@touch $@

$(B)/vmlinux.h:
	@mkdir -p $(B)
	@test -r /sys/kernel/btf/vmlinux || { echo "build: /sys/kernel/btf/vmlinux is missing: this kernel has no BTF (CONFIG_DEBUG_INFO_BTF)" >&2; exit 1; }
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

ifneq ($(CROSS),)
# The kernel types of this machine serve the other architecture's object too:
# every access to them is relocated (CO-RE) against the running kernel's BTF.
# What bpf_tracing.h reads registers through for that architecture is added when
# this machine's BTF lacks it (arm64: struct user_pt_regs, user ABI, no relocation needed).
$(O)/vmlinux.h: $(B)/vmlinux.h bpf/vmlinux-$(NODE_ARCH).h
	@mkdir -p $(O)
	{ cat $<; grep -q '^struct user_pt_regs {' $< || cat bpf/vmlinux-$(NODE_ARCH).h; } > $@

$(NODE_BASE)/bin/node: package-lock.json scripts/node-base.sh
	bash scripts/node-base.sh $(NODE_ARCH) $(NODE_BASE)
endif

$(O)/unixsock.bpf.o: bpf/unixsock.bpf.c bpf/unixsock.h bpf/syscalls.h $(O)/vmlinux.h $(DEPS)
	$(CLANG) -g -O2 -Wall -target bpf -D__TARGET_ARCH_$(ARCH) -I$(O) -I$(O)/deps/include -Ibpf -c $< -o $@
	llvm-strip -g $@

# bpf/unixsock.h is the one source of the record layouts and their vocabulary:
# the C++ side gets build/unixsock_vocab.h; src/generated/vocab.ts and the
# constants block of wireshark/unixsock.lua are committed, and the build stops
# while they differ from the header (`npm run vocab` rewrites them).
# (The same for every architecture: the addon of a cross build includes it from build/ too.)
$(B)/unixsock_vocab.h: bpf/unixsock.h scripts/gen-vocab.mjs src/generated/vocab.ts wireshark/unixsock.lua
	@mkdir -p $(B)
	node scripts/gen-vocab.mjs --check --c $@

$(O)/unixsock.skel.h: $(O)/unixsock.bpf.o
	$(BPFTOOL) gen skeleton $< name unixsock_bpf > $@

$(O)/unixsock.node: $(wildcard native/*.cc native/*.h) native/binding.gyp $(O)/unixsock.skel.h $(B)/unixsock_vocab.h $(DEPS) $(if $(CROSS),$(NODE_BASE)/bin/node)
	@test -x $(NODE_BASE)/bin/node || { echo "build: $(NODE_BASE) is missing: run npm ci (it installs Node's official binary for the single executable)" >&2; exit 1; }
	cd native && $(if $(CROSS),CC=$(CROSS)gcc CXX=$(CROSS)g++ LINK=$(CROSS)g++ AR=$(CROSS)ar) \
	  npx --no-install node-gyp rebuild --nodedir=$(abspath $(NODE_BASE)) --arch=$(NODE_ARCH) --silent -- -Dout=$(abspath $(O))
	$(RUN) $(NODE_BASE)/bin/node scripts/check-addon.mjs native/build/Release/unixsock.node
	cp native/build/Release/unixsock.node $@

TS_SOURCES := $(wildcard src/*.ts src/generated/*.ts) package.json tsconfig.json tsconfig.build.json
$(B)/typecheck.stamp: $(TS_SOURCES) $(B)/unixsock_vocab.h
	node node_modules/typescript-7/bin/tsc -p tsconfig.build.json --noEmit
	@touch $@

$(B)/unixsock.cjs: $(TS_SOURCES) $(B)/typecheck.stamp
	npx --no-install esbuild src/main.ts --bundle --platform=node --target=node20 --format=cjs --outfile=$@ --log-level=warning

$(EXE): $(B)/unixsock.cjs $(O)/unixsock.node scripts/make-sea.sh
	SEA_RUN="$(RUN)" STRIP=$(CROSS)strip bash scripts/make-sea.sh $(B)/unixsock.cjs $(O)/unixsock.node $(NODE_BASE)/bin/node $@

# What an install on another machine needs, for NODE_ARCH: the executable, its
# engine (for --system), the dissector and profile, the install script, README.
# There: tar -xzf unixsock-ARCH.tar.gz && unixsock/scripts/install-extcap.sh --no-build [--system]
DIST := $(B)/unixsock-$(NODE_ARCH).tar.gz
dist: $(DIST)
$(DIST): $(EXE) $(O)/unixsock.node scripts/install-extcap.sh $(wildcard wireshark/* wireshark/profile/*) README.md
	rm -rf $(O)/dist && mkdir -p $(O)/dist/unixsock/extcap $(O)/dist/unixsock/build $(O)/dist/unixsock/scripts
	cp $(EXE) $(O)/dist/unixsock/extcap/unixsock
	cp $(O)/unixsock.node $(O)/dist/unixsock/build/unixsock.node
	cp scripts/install-extcap.sh $(O)/dist/unixsock/scripts/
	cp -r wireshark README.md $(O)/dist/unixsock/
	tar -czf $@ -C $(O)/dist unixsock
	rm -rf $(O)/dist

clean:
	rm -rf $(B)/unixsock.* $(B)/unixsock_vocab.h $(B)/unixsock-*.tar.gz $(B)/typecheck.stamp $(B)/sea* native/build extcap/unixsock extcap/unixsock-* $(B)/arm64/unixsock.* $(B)/arm64/sea*

.PHONY: all clean dist

# traffic generator for the end-to-end tests
$(O)/sockgen: test/helpers/sockgen.c
	@mkdir -p $(O)
	$(CC) -O2 -Wall $(STATIC) -o $@ $<

# the same, linked statically: it runs inside the Docker tests' busybox image (test/helpers/docker.ts)
$(B)/sockgen-static: test/helpers/sockgen.c
	@mkdir -p $(B)
	$(CC) -O2 -Wall -static -o $@ $<

# what the running kernel offers each attach strategy, read independently of the loader (test/kernels/)
$(O)/kfeatures: test/kernels/kfeatures.c $(DEPS)
	@mkdir -p $(O)
	$(CC) -O2 -Wall $(STATIC) -I$(O)/deps/include -o $@ $< $(O)/deps/lib/libbpf.a $(O)/deps/lib/libelf.a $(O)/deps/lib/libeu.a $(if $(CROSS),$(O)/deps/lib/libz.a,-lz)

test-helpers: $(O)/sockgen $(O)/kfeatures
.PHONY: test-helpers

# the verifier's figures for every program of the BPF object (test/e2e/verifier.test.ts)
$(B)/verifier-stats: test/helpers/verifier-stats.c bpf/unixsock.h $(DEPS)
	$(CC) -O2 -Wall -I$(B)/deps/include -Ibpf -o $@ $< $(B)/deps/lib/libbpf.a $(B)/deps/lib/libelf.a $(B)/deps/lib/libeu.a -lz

$(B)/unixbench: bench/unixbench.c
	@mkdir -p $(B)
	$(CC) -O2 -Wall -o $@ $<
