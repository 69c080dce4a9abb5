/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * Appended to this machine's vmlinux.h for an arm64 object built elsewhere
 * (Makefile: $(O)/vmlinux.h): the register file as arm64 user space sees it
 * (arch/arm64/include/uapi/asm/ptrace.h), which libbpf's bpf_tracing.h reads
 * kprobe and syscall arguments through. User ABI: its layout never changes.
 */
#ifndef UNIXSOCK_VMLINUX_ARM64_H
#define UNIXSOCK_VMLINUX_ARM64_H
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};
#endif
