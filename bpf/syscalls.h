/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The system calls a send on a socket comes from, per architecture, and how
 * the probes read their number and arguments from the task's saved registers.
 *
 * Records carry x86_64's numbers on every architecture (docs/link-header.md:
 * the `syscall` field), so that a capture reads the same in Wireshark wherever
 * it was made: REC_* are those numbers, NR_* this architecture's own, and
 * record_syscall() turns one into the other. On x86_64 both are the same and
 * the record gets the number as it is (no extra instruction).
 *
 * Arguments go through libbpf's PT_REGS_PARMn_SYSCALL (bpf_tracing.h, chosen
 * by __TARGET_ARCH_*), on the pt_regs that bpf_task_pt_regs() gives. On x86_64
 * these are plain loads from that BTF pointer (regs->di, ->si, ...), the same
 * code as before they were used; on arm64 the first argument is orig_x0 (x0
 * already holds the return value when the exit tracepoints run), read with
 * CO-RE, and the others plain loads of user_pt_regs.
 */
#ifndef UNIXSOCK_SYSCALLS_H
#define UNIXSOCK_SYSCALLS_H

/* the numbers records carry: x86_64's */
#define REC_write 1
#define REC_writev 20
#define REC_sendfile 40
#define REC_sendto 44
#define REC_sendmsg 46
#define REC_splice 275
#define REC_vmsplice 278
#define REC_sendmmsg 307
#define REC_pwritev2 328
/* a call this architecture's table does not name (never on x86_64, where any number is its own) */
#define REC_unknown 0xffffffffu
/* From Linux 5.1 on, new system calls have one number on every architecture (io_uring_enter 426, ...). */
#define NR_COMMON_FIRST 403

#if defined(__TARGET_ARCH_x86)
/* arch/x86/entry/syscalls/syscall_64.tbl */
#define NR_write 1
#define NR_writev 20
#define NR_sendfile 40
#define NR_sendto 44
#define NR_sendmsg 46
#define NR_splice 275
#define NR_vmsplice 278
#define NR_sendmmsg 307
#define NR_pwritev2 328
#define SYSCALL_NR(regs) ((regs)->orig_ax)
#ifndef PT_REGS_PARM6_SYSCALL /* libbpf < 1.3 */
#define PT_REGS_PARM6_SYSCALL(x) ((x)->r9)
#endif

#elif defined(__TARGET_ARCH_arm64)
/* include/uapi/asm-generic/unistd.h (arm64 uses the generic table) */
#define NR_write 64
#define NR_writev 66
#define NR_sendfile 71
#define NR_vmsplice 75
#define NR_splice 76
#define NR_sendto 206
#define NR_sendmsg 211
#define NR_sendmmsg 269
#define NR_pwritev2 287
/* the kernel's own struct pt_regs (arch/arm64/include/asm/ptrace.h): not user
 * ABI, so read with CO-RE against the running kernel's BTF */
struct pt_regs___unixsock_arm64 {
	int syscallno;
} __attribute__((preserve_access_index));
#define SYSCALL_NR(regs) ((__u32)BPF_CORE_READ((const struct pt_regs___unixsock_arm64 *)(regs), syscallno))
#ifndef PT_REGS_PARM6_SYSCALL /* libbpf < 1.3 */
#define PT_REGS_PARM6_SYSCALL(x) (__PT_REGS_CAST(x)->regs[5])
#endif

#else
#error "unixsock: no system call table for this architecture (bpf/syscalls.h): build with -D__TARGET_ARCH_x86 or arm64"
#endif

#if defined(__TARGET_ARCH_x86)
static __always_inline __u32 record_syscall(__u32 nr)
{
	return nr;
}
#else
static __always_inline __u32 record_syscall(__u32 nr)
{
	switch (nr) {
	case NR_write:
		return REC_write;
	case NR_writev:
		return REC_writev;
	case NR_pwritev2:
		return REC_pwritev2;
	case NR_sendto:
		return REC_sendto;
	case NR_sendmsg:
		return REC_sendmsg;
	case NR_sendmmsg:
		return REC_sendmmsg;
	case NR_sendfile:
		return REC_sendfile;
	case NR_splice:
		return REC_splice;
	case NR_vmsplice:
		return REC_vmsplice;
	}
	return nr >= NR_COMMON_FIRST ? nr : REC_unknown;
}
#endif

#endif
