# unixsock build: BPF object -> skeleton -> native addon -> TypeScript bundle -> single executable.
# `make` (or `npm run build`) from a clean clone; every step is incremental.
SHELL := /bin/bash
.DELETE_ON_ERROR:
B := build
CLANG ?= clang
BPFTOOL ?= $(shell command -v bpftool || ls /usr/sbin/bpftool 2>/dev/null)
ARCH := x86
# The single executable's base is Node's official binary for NODE_ARCH (x64,
# arm64), the npm package node-linux-$(NODE_ARCH) pinned with its integrity in
# package-lock.json: the same Node for every build, whatever the system's node
# is (Debian 13's is a stub linked to libnode.so, which cannot carry a SEA).
# The addon is compiled against that package's headers too.
NODE_ARCH ?= x64
NODE_BASE := node_modules/node-linux-$(NODE_ARCH)

all: extcap/unixsock $(B)/sockgen $(B)/sockgen-static $(B)/kfeatures $(B)/unixbench $(B)/verifier-stats

# one run builds both libraries (a stamp, so that make -j runs it once)
DEPS := $(B)/deps/.stamp
$(DEPS): scripts/static-libs.sh
	@bash scripts/static-libs.sh
	@touch $@

$(B)/vmlinux.h:
	@mkdir -p $(B)
	@test -r /sys/kernel/btf/vmlinux || { echo "build: /sys/kernel/btf/vmlinux is missing: this kernel has no BTF (CONFIG_DEBUG_INFO_BTF)" >&2; exit 1; }
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(B)/unixsock.bpf.o: bpf/unixsock.bpf.c bpf/unixsock.h $(B)/vmlinux.h $(DEPS)
	$(CLANG) -g -O2 -Wall -target bpf -D__TARGET_ARCH_$(ARCH) -I$(B) -I$(B)/deps/include -Ibpf -c $< -o $@
	llvm-strip -g $@

# bpf/unixsock.h is the one source of the record layouts and their vocabulary:
# the C++ side gets build/unixsock_vocab.h; src/generated/vocab.ts and the
# constants block of wireshark/unixsock.lua are committed, and the build stops
# while they differ from the header (`npm run vocab` rewrites them).
$(B)/unixsock_vocab.h: bpf/unixsock.h scripts/gen-vocab.mjs src/generated/vocab.ts wireshark/unixsock.lua
	@mkdir -p $(B)
	node scripts/gen-vocab.mjs --check --c $@

$(B)/unixsock.skel.h: $(B)/unixsock.bpf.o
	$(BPFTOOL) gen skeleton $< name unixsock_bpf > $@

$(B)/unixsock.node: $(wildcard native/*.cc native/*.h) native/binding.gyp $(B)/unixsock.skel.h $(B)/unixsock_vocab.h $(DEPS)
	@test -x $(NODE_BASE)/bin/node || { echo "build: $(NODE_BASE) is missing: run npm ci (it installs Node's official binary for the single executable)" >&2; exit 1; }
	cd native && npx --no-install node-gyp rebuild --nodedir=../$(NODE_BASE) --arch=$(NODE_ARCH) --silent
	node scripts/check-addon.mjs native/build/Release/unixsock.node $(NODE_ARCH)
	cp native/build/Release/unixsock.node $@

TS_SOURCES := $(wildcard src/*.ts src/generated/*.ts) package.json tsconfig.json tsconfig.build.json
$(B)/typecheck.stamp: $(TS_SOURCES) $(B)/unixsock_vocab.h
	npx --no-install tsc -p tsconfig.build.json --noEmit
	@touch $@

$(B)/unixsock.cjs: $(TS_SOURCES) $(B)/typecheck.stamp
	npx --no-install esbuild src/main.ts --bundle --platform=node --target=node20 --format=cjs --outfile=$@ --log-level=warning

extcap/unixsock: $(B)/unixsock.cjs $(B)/unixsock.node scripts/make-sea.sh
	bash scripts/make-sea.sh $(B)/unixsock.cjs $(B)/unixsock.node $(NODE_BASE)/bin/node $@

clean:
	rm -rf $(B)/unixsock.* $(B)/unixsock_vocab.h $(B)/typecheck.stamp $(B)/sea* native/build extcap/unixsock

.PHONY: all clean

# traffic generator for the end-to-end tests
$(B)/sockgen: test/helpers/sockgen.c
	@mkdir -p $(B)
	$(CC) -O2 -Wall -o $@ $<

# the same, linked statically: it runs inside the Docker tests' busybox image (test/helpers/docker.ts)
$(B)/sockgen-static: test/helpers/sockgen.c
	@mkdir -p $(B)
	$(CC) -O2 -Wall -static -o $@ $<

# what the running kernel offers each attach strategy, read independently of the loader (test/kernels/)
$(B)/kfeatures: test/kernels/kfeatures.c $(DEPS)
	@mkdir -p $(B)
	$(CC) -O2 -Wall -I$(B)/deps/include -o $@ $< $(B)/deps/lib/libbpf.a $(B)/deps/lib/libelf.a $(B)/deps/lib/libeu.a -lz

test-helpers: $(B)/sockgen $(B)/kfeatures
.PHONY: test-helpers

# the verifier's figures for every program of the BPF object (test/e2e/verifier.test.ts)
$(B)/verifier-stats: test/helpers/verifier-stats.c bpf/unixsock.h $(DEPS)
	$(CC) -O2 -Wall -I$(B)/deps/include -Ibpf -o $@ $< $(B)/deps/lib/libbpf.a $(B)/deps/lib/libelf.a $(B)/deps/lib/libeu.a -lz

$(B)/unixbench: bench/unixbench.c
	@mkdir -p $(B)
	$(CC) -O2 -Wall -o $@ $<
