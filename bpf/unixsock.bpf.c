// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * unixsock kernel probes: every send on an AF_UNIX socket, with sender, peer,
 * socket identity, path, payload and ancillary data.
 *
 * One object, four attach strategies (all programs start with autoload off;
 * the loader enables the set it chose):
 *   fentry           fexit/unix_stream_sendmsg + fexit/unix_dgram_sendmsg
 *   kprobe           k(ret)probe on the same two functions
 *   sock_send_length tp_btf/sock_send_length (kernels >= 6.3, no trampolines needed)
 *   syscalls         tracepoint/syscalls/sys_exit_{write,writev,sendto,sendmsg,sendmmsg}
 *                    resolving the fd to its socket
 * Whatever finds the socket, the bytes are read from the user buffers named
 * by the syscall's own arguments (saved registers of the task), after the
 * fd in those arguments was checked to be that very socket.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "unixsock.h"
#include "syscalls.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_UNIX 1
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define PF_KTHREAD 0x00200000
#define PF_IO_WORKER 0x00000010
#define SOL_SOCKET 1

#define MAX_IOV 1024 /* UIO_MAXIOV */
#define MAX_STEPS (MAX_IOV * 2 + 4096)
#define MAX_MMSG 1024 /* UIO_MAXIOV: messages one sendmmsg() takes */
/* offsetof(struct sockaddr_un, sun_path): the bytes of sun_family before the path */
#define SUN_PATH_OFF 2

/* Settings and filters (bpf/unixsock.h), written by the loader before load;
 * the object alone captures everything. */
const volatile struct unixsock_filter filter = {
	.wakeup_bytes = 256 * 1024,
	.payload = 1,
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 20); /* resized by the loader */
} rb SEC(".maps");

/* Counters, one cache line per CPU, in the object's .bss, which libbpf maps
 * into the loader: it reads them without a bpf() call. Before Linux 6.5 every
 * bpf() command is refused to a caller without CAP_BPF when
 * kernel.unprivileged_bpf_disabled is set (Debian's default), and a member's
 * capture holds no capability by the time it reads them. */
struct unixsock_stat_line stat_lines[UNIXSOCK_STAT_CPUS] = {};

/* Who last used a socket (sent on it or read from it): the peer of a send.
 * This map and the next serve the kprobe and syscall strategies; BTF programs
 * keep the same in socket storage (sock_states). */
/* Who a process is inside its container (the records' identity fields). */
struct ident {
	__u64 cgroup_id;
	__u64 filt_anc; /* its ancestor at filter.cgroup_level (only with that filter) */
	__u32 pidns;
	__u32 nspid;
	__u32 mntns;
	__u32 pad;
};

struct owner {
	__u32 pid;
	char comm[UNIXSOCK_COMM_LEN];
	struct ident id;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct owner);
} owners SEC(".maps");

/* What every record of a connected socket repeats (paths, inodes), cached per
 * socket and trusted only while the socket's inode and peer are unchanged. */
struct sockinfo {
	__u64 ino;
	__u64 peer;
	__u64 peer_ino;
	__u64 path_ino;
	__u32 path_dev;
	__u8 local_path_len;
	__u8 peer_path_len;
	__u8 pad[2];
	__u8 local_path[UNIXSOCK_PATH_MAX];
	__u8 peer_path[UNIXSOCK_PATH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct sockinfo);
} sockinfos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sockinfo);
} sockinfo_scratch SEC(".maps");

/* The same two, kept in the socket itself where the program may use socket
 * storage (tp_btf, fexit): no hashing, no eviction, freed with the socket. The info
 * is valid while info.ino is the socket's inode and info.peer its peer. */
struct sock_state {
	struct owner ow;
	struct sockinfo info;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sock_state);
} sock_states SEC(".maps");

/* sendmmsg: index of the next message of the current call, per thread. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} mmsg_idx SEC(".maps");

/* kprobe strategy: the socket of the send in flight, per thread. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} inflight SEC(".maps");

/* Mirrors of the user ABI structs (x86_64). */
struct u_iovec {
	__u64 base;
	__u64 len;
};

struct u_msghdr {
	__u64 name;
	__u32 namelen;
	__u32 pad0;
	__u64 iov;
	__u64 iovlen;
	__u64 control;
	__u64 controllen;
	__u32 flags;
	__u32 pad1;
};

struct u_mmsghdr {
	struct u_msghdr hdr;
	__u32 msg_len; /* the kernel stores each message's byte count here */
	__u32 pad;
};

_Static_assert(sizeof(struct u_mmsghdr) == 64, "struct mmsghdr of x86_64 and arm64");
#define U_MMSGHDR_SIZE sizeof(struct u_mmsghdr)

static __always_inline void stat_add(__u32 idx, __u64 v)
{
	__u32 cpu = bpf_get_smp_processor_id();

	if (cpu >= UNIXSOCK_STAT_CPUS || idx >= UNIXSOCK_STAT_MAX)
		return;
	/* the mask, kept by barrier_var, is the bound older verifiers see (6.1
	 * lost the comparison's bound on the register clang indexed with) */
	barrier_var(cpu);
	cpu &= UNIXSOCK_STAT_CPUS - 1;
	stat_lines[cpu].v[idx] += v;
}

/* The policy's test: the sender runs as filter.own_uid (real and effective uid), or
 * the peer does: the credentials the other end had when the connection was
 * made (SO_PEERCRED: stream, seqpacket, socket pairs), else, for a datagram
 * socket connected with connect(), the owner of the peer socket. */
static __always_inline bool own_uid_ok(const struct cred *c, struct sock *sk, struct sock *peer)
{
	if (c->uid.val == filter.own_uid && c->euid.val == filter.own_uid)
		return true;
	const struct cred *pc = BPF_CORE_READ(sk, sk_peer_cred);
	if (pc)
		return BPF_CORE_READ(pc, euid.val) == filter.own_uid;
	if (peer)
		return BPF_CORE_READ(peer, sk_uid.val) == filter.own_uid;
	return false;
}

/* The namespace a struct pid was made in (its deepest level) and the number
 * it has there: NSpid in /proc/PID/status. numbers[] is indexed by a level
 * only known at run time, so it is one helper read. */
static __always_inline void pid_ns_nr(struct pid *p, struct ident *id)
{
	struct upid up = {};
	unsigned int level;

	if (!p)
		return;
	level = BPF_CORE_READ(p, level);
	if (level > 32) /* MAX_PID_NS_LEVEL */
		return;
	if (bpf_probe_read_kernel(&up, sizeof(up),
				  (void *)p + bpf_core_field_offset(struct pid, numbers) + level * sizeof(struct upid)))
		return;
	id->nspid = up.nr;
	id->pidns = BPF_CORE_READ(up.ns, ns.inum);
}

/* The namespaces of a task (its process's pid as its pid namespace sees it);
 * the cgroup is the caller's: the current task's through the helper. */
static __always_inline void task_ident(struct task_struct *t, struct ident *id)
{
	pid_ns_nr(BPF_CORE_READ(t, group_leader, thread_pid), id);
	id->mntns = BPF_CORE_READ(t, nsproxy, mnt_ns, ns.inum);
}

/* The current task's cgroup, and its ancestor the cgroup filter compares
 * (bpf_get_current_ancestor_cgroup_id: allowed to kprobe, tracepoint and
 * tracing programs, so to every strategy; called only with that filter on). */
static __always_inline void current_cgroup(struct ident *id)
{
	id->cgroup_id = bpf_get_current_cgroup_id();
	if (filter.cgroup_on)
		id->filt_anc = bpf_get_current_ancestor_cgroup_id(filter.cgroup_level);
}

/* The current process's identity: from the owner record of its socket when
 * that is this process already (a process's namespaces do not change under a
 * live socket often enough to matter: setns/unshare move one thread, and the
 * next owner change reads them again), else read. The cgroup is read every
 * time: one helper call, and processes do move. */
static __always_inline void current_ident(struct task_struct *t, struct owner *mine, __u32 tgid, struct ident *id)
{
	if (mine && mine->pid == tgid && mine->id.pidns)
		*id = mine->id;
	else
		task_ident(t, id);
	current_cgroup(id);
}

/* Remembers the current process as the user of socket ino (only when it
 * changed); id: its identity when the caller has it already. */
static __always_inline void note_owner(__u64 ino, __u32 tgid, struct ident *id)
{
	struct owner *ow, o = { .pid = tgid };

	if (!ino)
		return;
	ow = bpf_map_lookup_elem(&owners, &ino);
	if (ow && ow->pid == tgid)
		return;
	bpf_get_current_comm(o.comm, sizeof(o.comm));
	if (id) {
		o.id = *id;
	} else {
		task_ident(bpf_get_current_task_btf(), &o.id);
		current_cgroup(&o.id);
	}
	bpf_map_update_elem(&owners, &ino, &o, BPF_ANY);
}

/* Clamp a length so that the verifier sees the bound (the barrier keeps
 * clang from folding the check away). */
static __always_inline __u64 clamp_len(__u64 n, __u64 max)
{
	barrier_var(n);
	if (n > max)
		n = max;
	barrier_var(n);
	return n;
}

/* The payload's source: either one buffer or a user iovec array. The loop's
 * state lives in a per-CPU map value, not on the stack: the verifier tracks
 * stack slots value by value, so each bpf_loop() iteration it checked had a
 * new exact offset or iovec index (clang 19 keeps the 64 KiB step a
 * constant) and this kernel gave up after 8192 of them ("The sequence of 8193
 * jumps is too complex", every send program). It never tracks what a map
 * value holds: the first two iterations look alike and it stops there.
 * One value per CPU is enough for the same reason sockinfo_scratch is: a send
 * program runs to its end on its CPU before another one starts there (tracing
 * programs run with preemption off, and nothing they call sends on a socket). */
struct gather {
	__u64 iov; /* user address of struct iovec[], 0 for a single buffer */
	__u32 iov_cnt;
	__u32 iov_idx;
	__u64 ptr; /* current segment */
	__u64 seg_len;
	__u64 off;
	__u32 remaining; /* bytes still to capture */
	__u32 tid;
	__u64 ts;
	__u64 wake;
	__u8 lost;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gather);
} gathers SEC(".maps");

/* bpf_loop()'s context must be on the stack: it only points at the map value */
struct gather_ctx {
	struct gather *g;
};

/*
 * The reader looks at the ring every few ms by itself; the kernel wakes it
 * early only when this send carries the unread data across a multiple of
 * filter.wakeup_bytes. Waking on every send above the mark instead costs each send
 * an irq_work (a self-IPI: a VM exit under virtualization) exactly when the
 * reader is already busy writing.
 */
static __always_inline __u64 wake_flag(__u64 incoming)
{
	__u64 avail = bpf_ringbuf_query(&rb, BPF_RB_AVAIL_DATA);
	__u64 before = avail > UNIXSOCK_MSG_SIZE ? avail - UNIXSOCK_MSG_SIZE : 0;

	return before / filter.wakeup_bytes != (avail + incoming) / filter.wakeup_bytes ? BPF_RB_FORCE_WAKEUP
											: BPF_RB_NO_WAKEUP;
}

/* One DATA record of n payload bytes in a reservation of `size` (a constant:
 * the ring takes only reservations of known size, so fragments come in a few
 * size classes). false when the ring has no room. */
static __always_inline bool emit_fragment(struct gather *g, __u32 n, const __u32 size)
{
	struct unixsock_data *d = bpf_ringbuf_reserve(&rb, sizeof(*d) + size, 0);

	if (!d)
		return false;
	d->kind = UNIXSOCK_REC_DATA;
	d->len = n;
	d->tid = g->tid;
	d->ts = g->ts;
	/* on failure the helper zeroes the n bytes */
	if (bpf_probe_read_user(d->data, clamp_len(n, size), (void *)(g->ptr + g->off)))
		stat_add(UNIXSOCK_STAT_READ_ERRORS, 1);
	bpf_ringbuf_submit(d, g->wake);
	return true;
}

static long gather_step(__u32 i, void *ctx)
{
	struct gather *g = ((struct gather_ctx *)ctx)->g;
	__u32 n;

	if (g->remaining == 0 || g->lost)
		return 1;
	if (g->off >= g->seg_len) {
		struct u_iovec v;

		if (!g->iov || g->iov_idx >= g->iov_cnt)
			return 1;
		if (bpf_probe_read_user(&v, sizeof(v), (void *)(g->iov + g->iov_idx * sizeof(v)))) {
			stat_add(UNIXSOCK_STAT_READ_ERRORS, 1);
			return 1;
		}
		g->iov_idx++;
		g->ptr = v.base;
		g->seg_len = v.len;
		g->off = 0;
		return 0;
	}
	n = g->remaining;
	if (g->seg_len - g->off < n)
		n = g->seg_len - g->off;
	if (n > UNIXSOCK_FRAG_MAX)
		n = UNIXSOCK_FRAG_MAX;

	bool sent;
	if (n <= 64)
		sent = emit_fragment(g, n, 64);
	else if (n <= 256)
		sent = emit_fragment(g, n, 256);
	else if (n <= 1024)
		sent = emit_fragment(g, n, 1024);
	else if (n <= 4096)
		sent = emit_fragment(g, n, 4096);
	else if (n <= 16384)
		sent = emit_fragment(g, n, 16384);
	else
		sent = emit_fragment(g, n, UNIXSOCK_FRAG_MAX);
	if (!sent) {
		g->lost = 1;
		stat_add(UNIXSOCK_STAT_LOST_FRAGS, 1);
		stat_add(UNIXSOCK_STAT_LOST_BYTES, g->remaining);
		return 1;
	}
	g->off += n;
	g->remaining -= n;
	return 0;
}

/* Bound path of a unix socket; returns the number of bytes copied. */
static __always_inline __u8 read_unix_path(struct unix_sock *u, __u8 *dst)
{
	struct unix_address *a = BPF_CORE_READ(u, addr);
	int alen;
	__u64 len;

	if (!a)
		return 0;
	alen = BPF_CORE_READ(a, len) - SUN_PATH_OFF;
	if (alen <= 0)
		return 0;
	len = clamp_len(alen, UNIXSOCK_PATH_MAX);
	if (bpf_probe_read_kernel(dst, len,
				  (void *)a + bpf_core_field_offset(struct unix_address, name) + SUN_PATH_OFF))
		return 0;
	return len;
}

static __always_inline __u64 sock_ino(struct sock *sk)
{
	struct socket *so = BPF_CORE_READ(sk, sk_socket);
	struct socket_alloc *sa;

	if (!so)
		return 0;
	sa = container_of(so, struct socket_alloc, socket);
	return BPF_CORE_READ(sa, vfs_inode.i_ino);
}

/* The comparisons below have no branch on the bytes compared, only on the
 * filter's own bytes, which the verifier knows (read-only data): a branch per
 * byte was a state per byte to the verifier, at every place a filter is
 * decided (before and after the reservation). */
static __always_inline bool comm_eq(const char *c)
{
	__u8 diff = 0;

	for (int i = 0; i < UNIXSOCK_COMM_LEN; i++) {
		diff |= c[i] ^ filter.comm[i];
		if (!filter.comm[i])
			break;
	}
	return !diff;
}

static __always_inline bool path_match(const __u8 *p, __u8 len)
{
	__u8 flen = filter.path_len;

	__u8 diff = 0;

	if (!len || len < flen)
		return false;
	for (int i = 0; i < UNIXSOCK_PATH_MAX; i++) {
		if (i >= flen)
			break;
		diff |= p[i] ^ filter.path[i];
	}
	if (diff)
		return false;
	if (filter.path_mode == UNIXSOCK_PATH_PREFIX || len == flen)
		return true;
	/* exact: a filesystem path may carry its terminating NUL */
	return p[0] && len == flen + 1 && p[flen & 0x7f] == 0;
}

static __always_inline bool filter_ok(bool m, __u8 neg)
{
	return neg ? !m : m;
}

/* The user arguments of the send and where its payload lies. */
struct send_args {
	__u64 buf; /* single buffer, or 0 */
	__u64 iov; /* iovec array, or 0 */
	__u32 iov_cnt;
	__u64 control;
	__u64 controllen;
	__u64 dest; /* sockaddr of sendto/sendmsg */
	__u32 destlen;
	__u32 syscall;
	bool readable;
};

/* The file in slot fd of the current task's table, or NULL. The task and
 * its tables are BTF pointers here: plain loads, no helper calls. */
static __always_inline struct file *fd_file(struct files_struct *files, __u64 fd)
{
	struct fdtable *fdt = files->fdt;
	struct file **fds = fdt->fd;
	struct file *f = NULL;

	if (!fds || fd >= fdt->max_fds)
		return NULL;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd & 0xffffff]))
		return NULL;
	return f;
}

/* Is fd (an argument of the current syscall) the file of the sending socket? */
static __always_inline bool fd_is_file(struct files_struct *files, __u64 fd, struct file *file)
{
	struct file *f = fd_file(files, fd);

	return f && f == file;
}

/* What every send needs first about its socket. */
struct sk_basics {
	struct sock *peer;
	struct file *file;
	__u64 ino;
	__u16 type;
};

/* Through helper reads: works with any pointer (kprobe, syscall tracepoints, fentry on old kernels). */
static __always_inline bool basics_probe(struct sock *sk, struct sk_basics *b)
{
	if (!sk || BPF_CORE_READ(sk, __sk_common.skc_family) != AF_UNIX)
		return false;
	b->type = BPF_CORE_READ(sk, sk_type);
	b->peer = BPF_CORE_READ((struct unix_sock *)sk, peer);
	b->file = BPF_CORE_READ(sk, sk_socket, file);
	b->ino = sock_ino(sk);
	return true;
}

/* From a trusted BTF socket (tp_btf, kernels >= 6.3): plain loads where the verifier allows them. */
static __always_inline bool basics_btf(struct sock *sk, struct sk_basics *b)
{
	struct unix_sock *u = bpf_skc_to_unix_sock(sk);
	struct socket *so;

	if (!u)
		return false;
	b->type = BPF_CORE_READ(sk, sk_type);
	b->peer = u->peer;
	so = sk->sk_socket;
	b->file = so ? so->file : NULL;
	b->ino = b->file ? b->file->f_inode->i_ino : 0;
	return true;
}

static __always_inline void read_msghdr(struct send_args *a, __u64 uaddr)
{
	struct u_msghdr m;

	if (bpf_probe_read_user(&m, sizeof(m), (void *)uaddr))
		return;
	a->iov = m.iov;
	a->iov_cnt = m.iovlen > MAX_IOV ? MAX_IOV : m.iovlen;
	a->control = m.control;
	a->controllen = m.controllen;
	a->dest = m.name;
	a->destlen = m.namelen;
	a->readable = true;
}

/* mmsg_next: advance the sendmmsg index (sock_send_length and friends fire
 * once per message). files: the current task's (struct who). */
static __always_inline void syscall_args(struct files_struct *files, struct file *file, struct send_args *a,
					 bool mmsg_next, __u32 mmsg_i)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct pt_regs *regs;
	__u64 fd;
	__u32 nr;

	a->readable = false;
	if (t->flags & (PF_KTHREAD | PF_IO_WORKER))
		return;
	regs = (struct pt_regs *)bpf_task_pt_regs(t);
	if (!regs)
		return;
	nr = SYSCALL_NR(regs);
	a->syscall = record_syscall(nr);
	fd = PT_REGS_PARM1_SYSCALL(regs);
	switch (nr) {
	case NR_write:
	case NR_sendto:
		a->buf = PT_REGS_PARM2_SYSCALL(regs);
		a->readable = true;
		if (nr == NR_sendto) {
			a->dest = PT_REGS_PARM5_SYSCALL(regs);
			a->destlen = PT_REGS_PARM6_SYSCALL(regs);
		}
		break;
	case NR_writev:
	case NR_pwritev2:
		a->iov = PT_REGS_PARM2_SYSCALL(regs);
		a->iov_cnt = PT_REGS_PARM3_SYSCALL(regs);
		if (a->iov_cnt > MAX_IOV)
			a->iov_cnt = MAX_IOV;
		a->readable = true;
		break;
	case NR_sendmsg:
		read_msghdr(a, PT_REGS_PARM2_SYSCALL(regs));
		break;
	case NR_sendmmsg: {
		__u32 tid = (__u32)bpf_get_current_pid_tgid();
		__u32 idx = mmsg_i, *p;

		if (mmsg_next) {
			p = bpf_map_lookup_elem(&mmsg_idx, &tid);
			if (!p)
				return; /* call began before the capture: index unknown */
			idx = *p;
			*p = idx + 1;
		}
		if (idx >= MAX_MMSG)
			return;
		read_msghdr(a, PT_REGS_PARM2_SYSCALL(regs) + (__u64)idx * U_MMSGHDR_SIZE);
		break;
	}
	default:
		return;
	}
	if (a->readable && file && !fd_is_file(files, fd, file))
		a->readable = false;
}

/* The inode of the network namespace a socket belongs to (sock_net(): the
 * namespace of the process that created it, for the socket's whole life). */
static __always_inline __u32 sock_netns(struct sock *sk)
{
	return sk ? BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum) : 0;
}

/* The netns filter: the sending socket or its peer in filter.netns. The
 * socket's namespace, not the sending task's: an AF_UNIX socket lives in the
 * namespace it was created in whatever its user's namespace is now (a setns()
 * after socket(), a descriptor passed with SCM_RIGHTS), abstract names are
 * looked up in it, and it is the namespace whose /proc/net/unix (ss -x) lists
 * the socket. Filesystem sockets connect across namespaces (a container's
 * client on a bind-mounted /run/docker.sock); the kernel makes a stream
 * connection's accepted end in the connecting socket's namespace (seen in
 * /proc/net/unix: the listener's namespace does not list it), so both ends of
 * such a connection match the client's namespace, and the listener's
 * namespace only what it sends itself. Datagram sockets connected across
 * namespaces keep one each: either matches. An unconnected datagram has no
 * peer here: its sender's socket only. */
static __always_inline bool netns_wanted(struct sock *sk, struct sock *peer)
{
	bool hit = sock_netns(sk) == filter.netns || (peer && sock_netns(peer) == filter.netns);

	return filter_ok(hit, filter.netns_neg);
}

/* Whether a send is one to look at: not the capture's own, not a stream's
 * empty write, a socket type, a network namespace and (the administrator's
 * policy) a user asked for. The socket-only tests come here, before the
 * record is reserved. */
static __always_inline bool send_wanted(struct task_struct *task, const struct cred *cred, struct sock *sk,
					struct sk_basics *b, int ret)
{
	if (task->tgid == filter.self_tgid || ret < 0 || !sk)
		return false;
	if (ret == 0 && b->type == UNIXSOCK_SOCK_STREAM)
		return false;
	/* (type & 31): a shift the verifier can bound */
	if (filter.types_mask && !(filter.types_mask & (1u << (b->type & 31))))
		return false;
	if (filter.netns_on && !netns_wanted(sk, b->peer))
		return false;
	if (filter.own_uid_on && !own_uid_ok(cred, sk, b->peer))
		return false;
	return true;
}

/* The cached paths and inodes of sk (socket storage, or the hash map for
 * kprobe and syscall programs), if still valid for its inode and peer; *st is
 * sk's socket storage (in_sk only). */
static __always_inline struct sockinfo *cached_info(struct sock *sk, struct sk_basics *b, const bool in_sk,
						    struct sock_state **st)
{
	struct sockinfo *si = NULL;
	__u64 skey = (__u64)sk;

	if (in_sk) {
		*st = bpf_sk_storage_get(&sock_states, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (*st && b->ino && (*st)->info.ino == b->ino && (*st)->info.peer == (__u64)b->peer)
			si = &(*st)->info;
	} else {
		si = bpf_map_lookup_elem(&sockinfos, &skey);
		if (si && (si->ino != b->ino || si->peer != (__u64)b->peer))
			si = NULL;
	}
	return si;
}

/* Who sends, on what, when: the MSG record's fixed fields. */
static __always_inline void fill_sender(struct unixsock_msg *m, struct task_struct *task, const struct cred *cred,
					struct sk_basics *b, int ret, __u8 strategy, struct send_args *args,
					__u64 peer_ino)
{
	m->kind = UNIXSOCK_REC_MSG;
	m->sock_type = b->type;
	m->strategy = strategy;
	m->flags = 0;
	m->syscall = args->syscall;
	m->pid = task->tgid;
	m->tid = task->pid;
	m->uid = cred->uid.val;
	m->gid = cred->gid.val;
	m->msg_len = ret;
	m->ts = bpf_ktime_get_ns();
	m->ino = b->ino;
	m->peer_ino = peer_ino;
	__builtin_memcpy(m->comm, task->comm, sizeof(m->comm));
	m->comm[sizeof(m->comm) - 1] = 0;
	__builtin_memset(m->peer_comm, 0, sizeof(m->peer_comm));
	m->peer_path_dest = 0;
}

/* The paths and the socket file, read from the sockets (no valid cache), and
 * cached once the connection is complete (the peer has its inode). */
static __always_inline void read_paths(struct unixsock_msg *m, struct sock *sk, struct sk_basics *b, __u64 peer_ino,
				       struct sock_state *st, const bool in_sk)
{
	struct unix_sock *u = (struct unix_sock *)sk, *pu = (struct unix_sock *)b->peer;
	struct sock *peer = b->peer;
	__u64 skey = (__u64)sk;
	__u32 zero = 0;
	struct sockinfo *n = NULL;

	m->local_path_len = read_unix_path(u, m->local_path);
	m->peer_path_len = peer ? read_unix_path(pu, m->peer_path) : 0;
	/* the socket file in the filesystem: ours, else the peer's
	 * (accepted sockets share the listener's path) */
	struct dentry *de = BPF_CORE_READ(u, path.dentry);
	if (!de && peer)
		de = BPF_CORE_READ(pu, path.dentry);
	m->path_ino = de ? BPF_CORE_READ(de, d_inode, i_ino) : 0;
	m->path_dev = de ? BPF_CORE_READ(de, d_inode, i_sb, s_dev) : 0;
	if (peer_ino && st)
		n = &st->info;
	else if (peer_ino && !in_sk)
		n = bpf_map_lookup_elem(&sockinfo_scratch, &zero);
	if (!n)
		return;
	n->ino = 0; /* invalid while it is written (a send on another CPU) */
	barrier();
	n->peer = (__u64)peer;
	n->peer_ino = peer_ino;
	n->path_ino = m->path_ino;
	n->path_dev = m->path_dev;
	n->local_path_len = m->local_path_len;
	n->peer_path_len = m->peer_path_len;
	__builtin_memcpy(n->local_path, m->local_path, UNIXSOCK_PATH_MAX);
	__builtin_memcpy(n->peer_path, m->peer_path, UNIXSOCK_PATH_MAX);
	barrier();
	n->ino = b->ino;
	if (!st)
		bpf_map_update_elem(&sockinfos, &skey, n, BPF_ANY);
}

/* The paths and the socket file from the cache. Path bytes past their length
 * are never read: no zeroing, no copy of empty paths. */
static __always_inline void cached_paths(struct unixsock_msg *m, struct sockinfo *si)
{
	m->local_path_len = si->local_path_len;
	m->peer_path_len = si->peer_path_len;
	if (si->local_path_len)
		__builtin_memcpy(m->local_path, si->local_path, UNIXSOCK_PATH_MAX);
	if (si->peer_path_len)
		__builtin_memcpy(m->peer_path, si->peer_path, UNIXSOCK_PATH_MAX);
	m->path_ino = si->path_ino;
	m->path_dev = si->path_dev;
}

/* An unconnected datagram: the destination sendto/sendmsg named stands for the peer path. */
static __always_inline void dest_path(struct unixsock_msg *m, struct send_args *args)
{
	__u64 dl;

	if (!args->readable || !args->dest || args->destlen <= SUN_PATH_OFF)
		return;
	dl = clamp_len(args->destlen - SUN_PATH_OFF, UNIXSOCK_PATH_MAX);
	if (!bpf_probe_read_user(m->peer_path, dl, (void *)(args->dest + SUN_PATH_OFF))) {
		m->peer_path_len = dl;
		m->peer_path_dest = 1;
	}
}

/* The owner record of the peer socket (whoever last used it), or NULL. */
static __always_inline struct owner *peer_owner(struct sock *peer, __u64 peer_ino, const bool in_sk)
{
	if (in_sk) {
		struct sock_state *ps = peer ? bpf_sk_storage_get(&sock_states, peer, 0, 0) : NULL;

		return ps && ps->ow.pid ? &ps->ow : NULL;
	}
	return peer_ino ? bpf_map_lookup_elem(&owners, &peer_ino) : NULL;
}

/* The peer process: whoever last used the peer socket (ow, from peer_owner),
 * else who created it. */
static __always_inline void fill_peer(struct unixsock_msg *m, struct sock *sk, struct sock *peer, struct owner *ow,
				      __u64 *peer_anc)
{
	m->peer_pid = 0;
	m->peer_cgroup_id = 0;
	m->peer_pidns = 0;
	m->peer_nspid = 0;
	m->peer_mntns = 0;
	*peer_anc = 0;
	if (ow) {
		m->peer_pid = ow->pid;
		__builtin_memcpy(m->peer_comm, ow->comm, sizeof(m->peer_comm));
		m->peer_cgroup_id = ow->id.cgroup_id;
		m->peer_pidns = ow->id.pidns;
		m->peer_nspid = ow->id.nspid;
		m->peer_mntns = ow->id.mntns;
		*peer_anc = ow->id.filt_anc;
	} else if (peer) {
		/* our sk_peer_pid names the process that created the peer end */
		struct pid *pp = BPF_CORE_READ(sk, sk_peer_pid);

		if (pp) {
			struct hlist_node *first = BPF_CORE_READ(pp, tasks[PIDTYPE_TGID].first);

			struct ident pid = {};

			m->peer_pid = BPF_CORE_READ(pp, numbers[0].nr);
			m->flags |= UNIXSOCK_F_PEER_GUESS;
			pid_ns_nr(pp, &pid);
			m->peer_pidns = pid.pidns;
			m->peer_nspid = pid.nspid;
			if (first) {
				struct task_struct *task = (void *)first -
					bpf_core_field_offset(struct task_struct, pid_links[PIDTYPE_TGID]);

				BPF_CORE_READ_STR_INTO(&m->peer_comm, task, comm);
				m->peer_cgroup_id = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
				m->peer_mntns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
				/* its ancestors are not at hand here: only its own cgroup can match */
				*peer_anc = m->peer_cgroup_id;
			}
		}
	}
}

/* The sender's identity: from its socket's owner record when that is still
 * this process, else read from the task. */
static __always_inline void sender_ident(struct task_struct *task, struct sk_basics *b, struct sock_state *st,
					 const bool in_sk, struct ident *sid)
{
	current_ident(task, in_sk ? (st ? &st->ow : NULL) : bpf_map_lookup_elem(&owners, &b->ino), task->tgid, sid);
}

/* The sender is now the user of its socket (the peer of the other end's sends). */
static __always_inline void note_sender(struct task_struct *task, __u64 ino, struct sock_state *st, const bool in_sk,
					struct ident *sid)
{
	__u32 tgid = task->tgid;

	if (!in_sk) {
		note_owner(ino, tgid, sid);
	} else if (st && st->ow.pid != tgid) {
		st->ow.pid = tgid;
		__builtin_memcpy(st->ow.comm, task->comm, sizeof(st->ow.comm));
		st->ow.comm[sizeof(st->ow.comm) - 1] = 0;
		st->ow.id = *sid;
	}
}

/* The sender's identity into the record. */
static __always_inline void fill_ident(struct unixsock_msg *m, struct ident *sid)
{
	m->cgroup_id = sid->cgroup_id;
	m->pidns = sid->pidns;
	m->nspid = sid->nspid;
	m->mntns = sid->mntns;
}

/*
 * The filters decided before the record is reserved, from what is at hand:
 * the sender's task and identity, the peer's owner record (pow) and the
 * socket's cached paths (si). SEND_DROP: metadata_wanted would refuse the
 * record whatever else it held; SEND_WANTED: it would take it (and is not
 * asked); SEND_UNDECIDED: it decides on the record. A filter's hit is the
 * sender's or the peer's; the peer is unknown without its owner record
 * (fill_peer then guesses it from sk_peer_pid), and so are the paths
 * without the cache (an unconnected datagram's destination is never cached).
 * Each capture's program runs on every AF_UNIX send of the machine
 * (Wireshark and a second capture: both, on each send), and a send its
 * filters dropped used to cost a reservation, the fresh cache lines of a
 * 432-byte record and its filling first. bpf_stats on the 6.18 host, 64 B
 * socket pair, 200k sends, 4 interleaved runs at load 3.8: `comm OTHER` 437
 * -> 279 ns per send; a send the filter keeps 618 -> 639 ns (ranges
 * 605-651 and 617-647). The verifier walks more: send_length with every
 * filter on 80.3k instructions against 61.2k (15.2k against 21.9k with
 * none: the lookups stay late then, see handle_send).
 */
enum { SEND_DROP, SEND_WANTED, SEND_UNDECIDED };

static __always_inline int early_filters(struct task_struct *task, struct ident *sid, struct owner *pow,
					 struct sockinfo *si, struct sock *peer)
{
	struct owner none = {}; /* no peer at all: its fields are 0 in the record */
	bool hit;

	if (filter.path_mode && si) {
		hit = path_match(si->local_path, si->local_path_len) || path_match(si->peer_path, si->peer_path_len);
		if (!filter_ok(hit, filter.path_neg))
			return SEND_DROP;
	}
	if (filter.file_on && si) {
		hit = si->path_ino == filter.file_ino && si->path_dev == filter.file_dev;
		if (!filter_ok(hit, filter.file_neg))
			return SEND_DROP;
	}
	/* the peer process unknown (fill_peer guesses it from sk_peer_pid): the record decides */
	if (!pow && peer)
		return SEND_UNDECIDED;
	if (!pow)
		pow = &none;
	if (filter.self_tgid && pow->pid == filter.self_tgid)
		return SEND_DROP;
	if (filter.pid_on) {
		hit = task->tgid == filter.pid || pow->pid == filter.pid;
		if (!filter_ok(hit, filter.pid_neg))
			return SEND_DROP;
	}
	if (filter.comm_on) {
		hit = comm_eq(task->comm) || comm_eq(pow->comm);
		if (!filter_ok(hit, filter.comm_neg))
			return SEND_DROP;
	}
	if (filter.cgroup_on) {
		hit = sid->filt_anc == filter.cgroup_id || pow->id.filt_anc == filter.cgroup_id;
		if (!filter_ok(hit, filter.cgroup_neg))
			return SEND_DROP;
	}
	if (filter.pidns_on) {
		hit = sid->pidns == filter.pidns || pow->id.pidns == filter.pidns;
		if (!filter_ok(hit, filter.pidns_neg))
			return SEND_DROP;
	}
	/* every filter saw all it reads: the record need not be checked again */
	return si || !(filter.path_mode || filter.file_on) ? SEND_WANTED : SEND_UNDECIDED;
}

/* The filters that need the metadata. */
static __always_inline bool metadata_wanted(struct unixsock_msg *m, __u64 anc, __u64 peer_anc)
{
	/* the replies to the capture itself, as its own sends (send_wanted): its
	 * container-name lookups on the runtime's API socket (dockerd answering on
	 * /run/docker.sock) were in every capture of that socket */
	if (filter.self_tgid && m->peer_pid == filter.self_tgid)
		return false;
	if (filter.path_mode) {
		bool hit = path_match(m->local_path, m->local_path_len) || path_match(m->peer_path, m->peer_path_len);
		if (!filter_ok(hit, filter.path_neg))
			return false;
	}
	if (filter.file_on) {
		bool hit = m->path_ino == filter.file_ino && m->path_dev == filter.file_dev;
		if (!filter_ok(hit, filter.file_neg))
			return false;
	}
	if (filter.pid_on) {
		bool hit = m->pid == filter.pid || m->peer_pid == filter.pid;
		if (!filter_ok(hit, filter.pid_neg))
			return false;
	}
	if (filter.comm_on) {
		bool hit = comm_eq(m->comm) || comm_eq(m->peer_comm);
		if (!filter_ok(hit, filter.comm_neg))
			return false;
	}
	if (filter.cgroup_on) {
		bool hit = anc == filter.cgroup_id || peer_anc == filter.cgroup_id;
		if (!filter_ok(hit, filter.cgroup_neg))
			return false;
	}
	if (filter.pidns_on) {
		/* the process's own pid namespace (/proc/PID/ns/pid), not the ones above it */
		bool hit = m->pidns == filter.pidns || m->peer_pidns == filter.pidns;
		if (!filter_ok(hit, filter.pidns_neg))
			return false;
	}
	return true;
}

/* Payload bytes to capture (snap length, --metadata-only, unreadable), and
 * ancillary bytes (*ctrl_len); sets the flags that say so. */
static __always_inline __u32 payload_len(struct unixsock_msg *m, struct send_args *args, int ret, __u32 *ctrl_len)
{
	__u32 cap = ret;

	if (filter.snaplen && cap > filter.snaplen) {
		cap = filter.snaplen;
		m->flags |= UNIXSOCK_F_TRUNCATED;
	}
	if (!filter.payload) {
		cap = 0;
		if (ret)
			m->flags |= UNIXSOCK_F_TRUNCATED;
	}
	if (!args->readable) {
		cap = 0;
		m->flags |= UNIXSOCK_F_NO_PAYLOAD;
	}
	*ctrl_len = 0;
	if (args->readable && args->control && args->controllen) {
		m->flags |= UNIXSOCK_F_HAS_CTRL;
		*ctrl_len = UNIXSOCK_CTRL_MAX;
		if (args->controllen > UNIXSOCK_CTRL_MAX)
			m->flags |= UNIXSOCK_F_CTRL_TRUNC;
		else
			*ctrl_len = args->controllen;
	}
	return cap;
}

/* The payload as DATA records (bpf_loop over gather_step). */
static __always_inline void emit_payload(struct send_args *args, __u32 cap, __u32 tid, __u64 ts, __u64 wake)
{
	__u32 zero = 0;
	struct gather *g = bpf_map_lookup_elem(&gathers, &zero);
	struct gather_ctx gc = { .g = g };

	if (!g)
		return;
	__builtin_memset(g, 0, sizeof(*g));
	g->wake = wake;
	g->tid = tid;
	g->ts = ts;
	g->remaining = cap;
	if (args->iov) {
		g->iov = args->iov;
		g->iov_cnt = args->iov_cnt;
	} else {
		g->ptr = args->buf;
		g->seg_len = cap;
	}
	bpf_loop(MAX_STEPS, gather_step, &gc, 0);
	stat_add(UNIXSOCK_STAT_CAP_BYTES, cap - g->remaining);
}

/* The raw cmsg list as a CTRL record. */
static __always_inline void emit_ctrl(struct send_args *args, __u32 ctrl_len, __u32 tid, __u64 ts, __u64 wake)
{
	struct unixsock_data *d = bpf_ringbuf_reserve(&rb, sizeof(*d) + UNIXSOCK_CTRL_MAX, 0);

	if (!d) {
		stat_add(UNIXSOCK_STAT_LOST_FRAGS, 1);
		return;
	}
	d->kind = UNIXSOCK_REC_CTRL;
	d->tid = tid;
	d->ts = ts;
	d->len = ctrl_len;
	if (bpf_probe_read_user(d->data, clamp_len(ctrl_len, UNIXSOCK_CTRL_MAX), (void *)args->control))
		stat_add(UNIXSOCK_STAT_READ_ERRORS, 1);
	bpf_ringbuf_submit(d, wake);
}

/* The current task's pointers a send needs, read at the top of each program.
 * Each time the verifier walks a load of a pointer from a trusted one (the
 * task from bpf_get_current_task_btf), it looks up four type names in the
 * kernel's BTF, each a linear scan of its ~150k types (6.18): at 0.3 ms a
 * scan, 45 ms of the attach went there. Read after the branches before them,
 * task->cred was walked 28 times and task->files 6; here, once each. */
struct who {
	const struct cred *cred;
	struct files_struct *files;
};

static __always_inline void who_now(struct who *w)
{
	struct task_struct *t = bpf_get_current_task_btf();

	w->cred = t->cred;
	w->files = t->files;
}

/* One send: the MSG record, then its DATA and CTRL records. in_sk: the
 * socket pointers are BTF pointers the program may pass to socket storage
 * helpers (tp_btf, fexit); otherwise the caches are hash maps. */
static __always_inline int handle_send(struct who *w, struct sock *sk, struct sk_basics *b, int ret, __u8 strategy,
				       struct send_args *args, const bool in_sk)
{
	/* who sends: plain loads from the current task (cheaper than one helper call each) */
	struct task_struct *task = bpf_get_current_task_btf();
	const struct cred *cred = w->cred;
	struct sock_state *st = NULL;
	struct unixsock_msg *m;
	struct sockinfo *si;
	struct owner *pow;
	int early;
	struct ident sid = {};
	__u64 peer_ino, wake, peer_anc;
	__u32 cap, ctrl_len;

	if (!send_wanted(task, cred, sk, b, ret))
		return 0;
	si = cached_info(sk, b, in_sk, &st);
	peer_ino = si ? si->peer_ino : (b->peer ? sock_ino(b->peer) : 0);
	/* With a filter on (a constant to the verifier), who sends and who
	 * receives are looked up first and the filters decided where they can
	 * be (early_filters); without, the order of old, which the verifier
	 * walks in fewer states (the lookups' outcomes split them late). Only in
	 * the programs with socket storage (tp_btf, fentry): the kprobe and
	 * syscall programs serve old kernels, where the verifier's work counts
	 * more than a filtered-out send's (with filters on it walked 2.1x the
	 * instructions there, 86.6k against 40.7k, and 1.3x in send_length). */
	const bool filtered = in_sk &&
		(filter.path_mode || filter.file_on || filter.pid_on || filter.comm_on || filter.cgroup_on ||
		 filter.pidns_on);
	early = SEND_UNDECIDED;
	pow = NULL;
	if (filtered) {
		sender_ident(task, b, st, in_sk, &sid);
		/* also for sends the filters drop: their sockets' owners are other sends' peers */
		note_sender(task, b->ino, st, in_sk, &sid);
		pow = peer_owner(b->peer, peer_ino, in_sk);
		early = early_filters(task, &sid, pow, si, b->peer);
		if (early == SEND_DROP)
			return 0;
	}

	m = bpf_ringbuf_reserve(&rb, sizeof(*m), 0);
	if (!m) {
		stat_add(UNIXSOCK_STAT_LOST_MSGS, 1);
		stat_add(UNIXSOCK_STAT_LOST_BYTES, ret);
		return 0;
	}
	fill_sender(m, task, cred, b, ret, strategy, args, peer_ino);
	if (!filtered)
		sender_ident(task, b, st, in_sk, &sid);
	fill_ident(m, &sid);
	if (si)
		cached_paths(m, si);
	else
		read_paths(m, sk, b, peer_ino, st, in_sk);
	if (!b->peer)
		dest_path(m, args);
	if (!filtered)
		pow = peer_owner(b->peer, peer_ino, in_sk);
	fill_peer(m, sk, b->peer, pow, &peer_anc);
	if (!filtered)
		note_sender(task, b->ino, st, in_sk, &sid);
	if (early == SEND_UNDECIDED && !metadata_wanted(m, sid.filt_anc, peer_anc)) {
		bpf_ringbuf_discard(m, BPF_RB_NO_WAKEUP);
		return 0;
	}

	cap = payload_len(m, args, ret, &ctrl_len);
	m->cap_len = cap;
	m->ctrl_len = ctrl_len;
	wake = wake_flag(cap + ctrl_len);
	__u32 tid = m->tid;
	__u64 ts = m->ts;
	/* small single-buffer payloads ride in the MSG record: one reservation, no loop */
	if (cap && cap <= UNIXSOCK_INLINE_MAX && !args->iov) {
		if (bpf_probe_read_user(m->inline_data, clamp_len(cap, UNIXSOCK_INLINE_MAX), (void *)args->buf))
			stat_add(UNIXSOCK_STAT_READ_ERRORS, 1);
		m->flags |= UNIXSOCK_F_INLINE;
		stat_add(UNIXSOCK_STAT_CAP_BYTES, cap);
		cap = 0;
	}
	bpf_ringbuf_submit(m, cap || ctrl_len ? BPF_RB_NO_WAKEUP : wake);

	stat_add(UNIXSOCK_STAT_SENDS, 1);
	stat_add(UNIXSOCK_STAT_BYTES, ret);
	if (cap)
		emit_payload(args, cap, tid, ts, wake);
	if (ctrl_len)
		emit_ctrl(args, ctrl_len, tid, ts, wake);
	return 0;
}

/* ---- strategy: tp_btf/sock_send_length (kernels >= 6.3) ---- */

/* A send seen in sock_sendmsg or the unix sendmsg functions. btf: sk is a BTF
 * pointer (tp_btf, fexit: plain loads, socket storage); otherwise a plain
 * address (kprobe: helper reads, hash maps). */
static __always_inline int on_send(struct sock *sk, int ret, __u8 strategy, const bool btf)
{
	struct send_args a = {};
	struct sk_basics b;
	struct who w;

	who_now(&w);
	if (ret < 0 || !(btf ? basics_btf(sk, &b) : basics_probe(sk, &b)))
		return 0;
	syscall_args(w.files, b.file, &a, true, 0);
	return handle_send(&w, sk, &b, ret, strategy, &a, btf);
}

/* A receive seen by a BTF program: the reader now owns the socket. Runs on
 * every receive of every socket: plain loads, one socket storage lookup. */
static __always_inline int recv_btf(struct sock *sk, int ret)
{
	struct sock_state *st;
	__u32 tgid;

	if (ret < 0 || !sk || sk->__sk_common.skc_family != AF_UNIX)
		return 0;
	st = bpf_sk_storage_get(&sock_states, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	tgid = bpf_get_current_pid_tgid() >> 32;
	if (st && st->ow.pid != tgid) {
		st->ow.pid = tgid;
		bpf_get_current_comm(st->ow.comm, sizeof(st->ow.comm));
		task_ident(bpf_get_current_task_btf(), &st->ow.id);
		current_cgroup(&st->ow.id);
	}
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(send_length, struct sock *sk, int ret, int flags)
{
	return on_send(sk, ret, UNIXSOCK_S_SOCK_SEND_LENGTH, true);
}

/* sendmmsg calls sock_sendmsg once per message: count them from the start of the call. */
SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int enter_sendmmsg(void *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u32 zero = 0;

	bpf_map_update_elem(&mmsg_idx, &tid, &zero, BPF_ANY);
	return 0;
}

/* ---- strategy: fentry (fexit on the unix sendmsg functions) ---- */

SEC("fexit/unix_stream_sendmsg")
int BPF_PROG(fx_stream_sendmsg, struct socket *sock, struct msghdr *msg, size_t len, int ret)
{
	return on_send(sock->sk, ret, UNIXSOCK_S_FENTRY, true);
}

SEC("fexit/unix_dgram_sendmsg")
int BPF_PROG(fx_dgram_sendmsg, struct socket *sock, struct msghdr *msg, size_t len, int ret)
{
	return on_send(sock->sk, ret, UNIXSOCK_S_FENTRY, true);
}

/* sendfile/splice into a stream socket on kernels < 6.5 (later ones go through sendmsg) */
SEC("fexit/unix_stream_sendpage")
int BPF_PROG(fx_stream_sendpage, struct socket *sock, struct page *page, int offset, size_t size, int flags,
	     ssize_t ret)
{
	return on_send(sock->sk, ret, UNIXSOCK_S_FENTRY, true);
}

/* ---- strategy: kprobe + kretprobe on the same functions ---- */

static __always_inline int kp_enter(struct socket *sock)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 sk = (__u64)BPF_CORE_READ(sock, sk);

	bpf_map_update_elem(&inflight, &tid, &sk, BPF_ANY);
	return 0;
}

static __always_inline int kp_exit(int ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 *skp = bpf_map_lookup_elem(&inflight, &tid);
	struct sock *sk;

	if (!skp)
		return 0;
	sk = (struct sock *)*skp;
	bpf_map_delete_elem(&inflight, &tid);
	return on_send(sk, ret, UNIXSOCK_S_KPROBE, false);
}

SEC("kprobe/unix_stream_sendmsg")
int BPF_KPROBE(kp_stream_sendmsg, struct socket *sock)
{
	return kp_enter(sock);
}

SEC("kretprobe/unix_stream_sendmsg")
int BPF_KRETPROBE(krp_stream_sendmsg, int ret)
{
	return kp_exit(ret);
}

SEC("kprobe/unix_dgram_sendmsg")
int BPF_KPROBE(kp_dgram_sendmsg, struct socket *sock)
{
	return kp_enter(sock);
}

SEC("kretprobe/unix_dgram_sendmsg")
int BPF_KRETPROBE(krp_dgram_sendmsg, int ret)
{
	return kp_exit(ret);
}

SEC("kprobe/unix_stream_sendpage")
int BPF_KPROBE(kp_stream_sendpage, struct socket *sock)
{
	return kp_enter(sock);
}

SEC("kretprobe/unix_stream_sendpage")
int BPF_KRETPROBE(krp_stream_sendpage, long ret)
{
	return kp_exit(ret);
}

/* ---- strategy: syscall exit tracepoints, fd resolved to its socket ---- */

static __always_inline struct sock *fd_sock(struct files_struct *files, __u64 fd)
{
	struct file *f = fd_file(files, fd);
	struct socket *so;

	if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	so = BPF_CORE_READ(f, private_data);
	return so ? BPF_CORE_READ(so, sk) : NULL;
}

/* fd_arg: which syscall argument holds the socket (0: the first, 2: the third) */
static __always_inline int sys_exit_send(long ret, int fd_arg)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(t);
	struct send_args a = {};
	struct sk_basics b;
	struct sock *sk;
	struct who w;

	who_now(&w);
	if (ret < 0 || !regs)
		return 0;
	sk = fd_sock(w.files, fd_arg == 2 ? PT_REGS_PARM3_SYSCALL(regs) : PT_REGS_PARM1_SYSCALL(regs));
	if (!basics_probe(sk, &b))
		return 0;
	syscall_args(w.files, NULL, &a, false, 0);
	return handle_send(&w, sk, &b, ret, UNIXSOCK_S_SYSCALLS, &a, false);
}

struct exit_ctx {
	__u64 pad;
	long id;
	long ret;
};

SEC("tracepoint/syscalls/sys_exit_write")
int sx_write(struct exit_ctx *ctx)
{
	return sys_exit_send(ctx->ret, 0);
}

SEC("tracepoint/syscalls/sys_exit_writev")
int sx_writev(struct exit_ctx *ctx)
{
	return sys_exit_send(ctx->ret, 0);
}

SEC("tracepoint/syscalls/sys_exit_sendto")
int sx_sendto(struct exit_ctx *ctx)
{
	return sys_exit_send(ctx->ret, 0);
}

SEC("tracepoint/syscalls/sys_exit_sendmsg")
int sx_sendmsg(struct exit_ctx *ctx)
{
	return sys_exit_send(ctx->ret, 0);
}

/* sendfile and splice into a socket: the length is known, the bytes are not */
SEC("tracepoint/syscalls/sys_exit_sendfile64")
int sx_sendfile(struct exit_ctx *ctx)
{
	return sys_exit_send(ctx->ret, 0);
}

SEC("tracepoint/syscalls/sys_exit_splice")
int sx_splice(struct exit_ctx *ctx)
{
	return sys_exit_send(ctx->ret, 2);
}

struct mmsg_loop {
	struct sock *sk;
	struct sk_basics b;
	__u64 vec;
	__u32 count;
};

static long sx_mmsg_step(__u32 i, void *ctx)
{
	struct mmsg_loop *l = ctx;
	struct send_args a = {};
	__u32 len = 0;
	struct who w;

	who_now(&w);
	if (i >= l->count)
		return 1;
	/* the kernel stored each message's byte count in msg_len */
	if (bpf_probe_read_user(
		    &len, sizeof(len),
		    (void *)(l->vec + (__u64)i * U_MMSGHDR_SIZE + __builtin_offsetof(struct u_mmsghdr, msg_len))))
		return 1;
	syscall_args(w.files, NULL, &a, false, i);
	handle_send(&w, l->sk, &l->b, len, UNIXSOCK_S_SYSCALLS, &a, false);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendmmsg")
int sx_sendmmsg(struct exit_ctx *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(t);
	struct mmsg_loop l = {};
	struct sock *sk;

	if (ctx->ret <= 0 || !regs)
		return 0;
	sk = fd_sock(bpf_get_current_task_btf()->files, PT_REGS_PARM1_SYSCALL(regs));
	if (!basics_probe(sk, &l.b))
		return 0;
	l.sk = sk;
	l.vec = PT_REGS_PARM2_SYSCALL(regs);
	l.count = ctx->ret;
	bpf_loop(MAX_MMSG, sx_mmsg_step, &l, 0);
	return 0;
}

/* ---- peers that only receive: remember who reads from a socket ---- */

static __always_inline int on_recv(struct sock *sk, int ret)
{
	if (ret < 0 || !sk || BPF_CORE_READ(sk, __sk_common.skc_family) != AF_UNIX)
		return 0;
	note_owner(sock_ino(sk), bpf_get_current_pid_tgid() >> 32, NULL);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(recv_length, struct sock *sk, int ret, int flags)
{
	return recv_btf(sk, ret);
}

SEC("fexit/unix_stream_recvmsg")
int BPF_PROG(fx_stream_recvmsg, struct socket *sock, struct msghdr *msg, size_t size, int flags, int ret)
{
	return recv_btf(sock->sk, ret);
}

SEC("fexit/unix_dgram_recvmsg")
int BPF_PROG(fx_dgram_recvmsg, struct socket *sock, struct msghdr *msg, size_t size, int flags, int ret)
{
	return recv_btf(sock->sk, ret);
}

/* kprobe strategy: the reader is known at entry (the result does not matter for who owns the socket) */
SEC("kprobe/unix_stream_recvmsg")
int BPF_KPROBE(kp_stream_recvmsg, struct socket *sock)
{
	return on_recv(BPF_CORE_READ(sock, sk), 0);
}

SEC("kprobe/unix_dgram_recvmsg")
int BPF_KPROBE(kp_dgram_recvmsg, struct socket *sock)
{
	return on_recv(BPF_CORE_READ(sock, sk), 0);
}
