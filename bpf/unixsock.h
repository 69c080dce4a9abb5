/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one source of the record layouts and their vocabulary: the records the
 * kernel probes put on the ring buffer, the record header the capture writes
 * into pcapng (docs/link-header.md), their flags, kinds, strategies, option
 * types and limits. bpf/ and native/ include it; scripts/gen-vocab.mjs turns
 * it into src/generated/vocab.ts, the constants block of wireshark/unixsock.lua
 * and build/unixsock_vocab.h (strategy names, and static_asserts that the
 * offsets it computed are the compiler's). After editing: `npm run vocab`
 * (the build fails while the generated files are stale).
 *
 * What the generator reads, so keep to it: `#define UNIXSOCK_X <integer
 * expression>`, enums whose members are `UNIXSOCK_..._NAME [= expression],`
 * (the name after the common prefix, lowercased, is the member's name in the
 * readers: UNIXSOCK_S_SOCK_SEND_LENGTH is strategy "sock_send_length"), and
 * structs of __u8/__u16/__u32/__u64/char fields and arrays of them.
 * Fixed-width types only, no includes.
 *
 * One send becomes: one MSG record (metadata, and the payload itself when it
 * is at most UNIXSOCK_INLINE_MAX bytes from one buffer), zero or more DATA
 * records (payload fragments, in order, at most UNIXSOCK_FRAG_MAX bytes each),
 * and one CTRL record when the send carried ancillary data. All records of one send
 * come from one thread (tid) and follow each other in that thread's order.
 */
#ifndef UNIXSOCK_H
#define UNIXSOCK_H

#define UNIXSOCK_COMM_LEN 16
#define UNIXSOCK_PATH_MAX 108 /* sizeof(sun_path) */
#define UNIXSOCK_FRAG_MAX 65536
#define UNIXSOCK_CTRL_MAX 1024 /* SCM_MAX_FD (253) fds plus headers fit */
#define UNIXSOCK_INLINE_MAX 64 /* payloads this small travel inside the MSG record */

enum unixsock_rec_kind {
	UNIXSOCK_REC_MSG = 1,
	UNIXSOCK_REC_DATA = 2,
	UNIXSOCK_REC_CTRL = 3,
};

/* unixsock_msg.flags */
enum unixsock_msg_flags {
	UNIXSOCK_F_TRUNCATED = 1 << 0,  /* cap_len < msg_len (snap length) */
	UNIXSOCK_F_NO_PAYLOAD = 1 << 1, /* bytes not readable (sendfile, splice, io_uring, kernel sender) */
	UNIXSOCK_F_HAS_CTRL = 1 << 2,   /* a CTRL record follows */
	UNIXSOCK_F_CTRL_TRUNC = 1 << 3, /* ancillary data longer than UNIXSOCK_CTRL_MAX */
	UNIXSOCK_F_PEER_GUESS = 1 << 4, /* peer pid from sk_peer_pid, not seen on the peer socket */
	UNIXSOCK_F_INLINE = 1 << 8,     /* the payload is in inline_data, no DATA record follows */
};

/* unixsock_msg.sock_type: the kernel's SOCK_* numbers (AF_UNIX has no others) */
enum unixsock_sock_type {
	UNIXSOCK_SOCK_STREAM = 1,
	UNIXSOCK_SOCK_DGRAM = 2,
	UNIXSOCK_SOCK_SEQPACKET = 5,
};

/* unixsock_msg.strategy: the attach strategy that produced the record; the
 * loader tries them in this order (native/ keeps one table of their programs) */
enum unixsock_strategy {
	UNIXSOCK_S_FENTRY = 1,
	UNIXSOCK_S_KPROBE = 2,
	UNIXSOCK_S_SOCK_SEND_LENGTH = 3,
	UNIXSOCK_S_SYSCALLS = 4,
};

struct unixsock_msg {
	__u8 kind;      /* UNIXSOCK_REC_MSG */
	__u8 sock_type; /* enum unixsock_sock_type */
	__u8 strategy;
	__u8 local_path_len;
	__u8 peer_path_len;  /* bound path of the peer, or sendto()'s address */
	__u8 peer_path_dest; /* 1: peer path is the destination address of sendto/sendmsg */
	__u16 flags;
	__u32 syscall; /* syscall number of the send (x86_64 numbering) */
	__u32 pid;     /* tgid */
	__u32 tid;
	__u32 uid;
	__u32 gid;
	__u32 peer_pid;
	__u32 msg_len;        /* bytes the send moved (its return value) */
	__u32 cap_len;        /* bytes that follow in DATA records */
	__u32 ctrl_len;       /* bytes of raw cmsg in the CTRL record */
	__u32 path_dev;       /* device (kernel encoding) of the socket file, 0 when none */
	__u64 ts;             /* bpf_ktime_get_ns() at the end of the send */
	__u64 ino;            /* sockfs inode of the sending socket */
	__u64 peer_ino;       /* sockfs inode of the peer socket, 0 when unknown */
	__u64 path_ino;       /* inode of the socket file in the filesystem, 0 when none */
	__u64 cgroup_id;      /* sender's cgroup in the v2 hierarchy (its directory's inode) */
	__u64 peer_cgroup_id; /* the peer process's, 0 when unknown */
	__u32 pidns;          /* inode of the sender's pid namespace */
	__u32 nspid;          /* sender's tgid as its own pid namespace numbers it */
	__u32 mntns;          /* inode of the sender's mount namespace */
	__u32 peer_pidns;     /* the same three for the peer process, 0 when unknown */
	__u32 peer_nspid;
	__u32 peer_mntns;
	char comm[UNIXSOCK_COMM_LEN];
	char peer_comm[UNIXSOCK_COMM_LEN];
	__u8 local_path[UNIXSOCK_PATH_MAX];
	__u8 peer_path[UNIXSOCK_PATH_MAX];
	__u8 inline_data[UNIXSOCK_INLINE_MAX];
};

struct unixsock_data {
	__u8 kind; /* UNIXSOCK_REC_DATA or UNIXSOCK_REC_CTRL */
	__u8 pad[3];
	__u32 len; /* bytes in data[] */
	__u32 tid;
	__u32 pad2;
	__u64 ts; /* same as the MSG record's ts */
	__u8 data[];
};

/*
 * The probes' settings and filters: the loader writes them into the object's
 * read-only data before load (`filter` in bpf/unixsock.bpf.c), so the
 * verifier knows every value and a filter that is off is dead code. One
 * structure from the command line down: src/filter.ts and src/capture.ts fill
 * an object with these fields under their camelCase names (UnixsockFilter in
 * src/generated/vocab.ts), the addon copies each field of it in, by the
 * offsets of build/unixsock_vocab.h. Integers and byte strings only.
 */
struct unixsock_filter {
	__u64 wakeup_bytes; /* wake the reader when the unread data crosses a multiple of this; 0: the loader picks */
	__u64 file_ino;     /* file filter: inode and device (kernel encoding) of the socket file */
	__u64 cgroup_id;    /* cgroup filter (a container's, or a path's): sender or peer in this cgroup v2 */
	__u32 cgroup_level; /*   directory or below it: its id, and its depth below the root */
	__u32 file_dev;
	__u32 self_tgid;  /* the capture itself, never traced */
	__u32 snaplen;    /* 0: whole message */
	__u32 types_mask; /* bit (1 << sock_type); 0: all */
	__u32 pid;        /* pid filter: sender or peer */
	__u32 pidns;      /* pidns filter: inode of the sender's or the peer's own pid namespace */
	__u32 netns;      /* netns filter: inode of the net namespace of the sending socket or its peer */
	/* The administrator's policy (install-extcap.sh --system --own-uid-only): a
	 * member sees only sends where the sender or the peer runs as own_uid. Set
	 * from a root-owned file, never from an option. */
	__u32 own_uid;
	__u8 own_uid_on;
	__u8 payload;   /* 0: metadata only */
	__u8 path_mode; /* enum unixsock_path_mode */
	__u8 path_neg;  /* *_neg: the filter is negated */
	__u8 path_len;
	__u8 file_on;
	__u8 file_neg;
	__u8 pid_on;
	__u8 pid_neg;
	__u8 comm_on;
	__u8 comm_neg;
	__u8 cgroup_on;
	__u8 cgroup_neg;
	__u8 pidns_on;
	__u8 pidns_neg;
	__u8 netns_on;
	__u8 netns_neg;
	__u8 path[UNIXSOCK_PATH_MAX]; /* raw sun_path bytes (abstract: a NUL first) */
	char comm[UNIXSOCK_COMM_LEN]; /* NUL-terminated */
};

/* unixsock_filter.path_mode */
enum unixsock_path_mode {
	UNIXSOCK_PATH_OFF = 0,
	UNIXSOCK_PATH_EXACT = 1,
	UNIXSOCK_PATH_PREFIX = 2,
};

/* CPUs with their own counters (higher-numbered CPUs are not counted). */
#define UNIXSOCK_STAT_CPUS 1024
struct unixsock_stat_line {
	__u64 v[8]; /* indexed by enum unixsock_stat; one cache line */
};

/* Index into each CPU's counters (at most 8). */
enum unixsock_stat {
	UNIXSOCK_STAT_SENDS = 0,   /* AF_UNIX sends that passed the filters */
	UNIXSOCK_STAT_BYTES,       /* bytes those sends moved */
	UNIXSOCK_STAT_CAP_BYTES,   /* payload bytes put on the ring */
	UNIXSOCK_STAT_LOST_MSGS,   /* MSG records the ring had no room for */
	UNIXSOCK_STAT_LOST_FRAGS,  /* DATA/CTRL records the ring had no room for */
	UNIXSOCK_STAT_LOST_BYTES,  /* payload bytes lost that way */
	UNIXSOCK_STAT_READ_ERRORS, /* user memory that could not be read */
	UNIXSOCK_STAT_MAX,
};

#define UNIXSOCK_MSG_SIZE 432
#define UNIXSOCK_DATA_HDR_SIZE 24

/*
 * The record header written before each payload in the pcapng file
 * (LINKTYPE_USERn), version 2: docs/link-header.md. Big-endian on the wire and
 * written field by field (native/pcapng_out.h; src/link-header.ts is the
 * reference): this struct gives the fields' offsets and sizes, it is never
 * copied as a whole. Options (TLVs) follow the fixed part.
 */
#define UNIXSOCK_LINK_VERSION 2

struct unixsock_link_header {
	__u8 version; /* UNIXSOCK_LINK_VERSION */
	__u8 sock_type;
	__u16 header_len; /* fixed part + options: where the payload starts */
	__u16 flags;      /* enum unixsock_msg_flags (not INLINE) + enum unixsock_link_flags */
	__u8 strategy;
	__u8 reserved1;
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 gid;
	__u32 peer_pid;
	__u32 syscall;
	__u64 inode;
	__u64 peer_inode;
	__u32 msg_len;
	__u32 offset; /* where this record's payload starts in the message */
	__u32 path_dev;
	__u32 reserved2;
	__u64 path_inode;
	char comm[UNIXSOCK_COMM_LEN];
	char peer_comm[UNIXSOCK_COMM_LEN];
	/* version 2: who the processes are inside their containers */
	__u64 cgroup_id;      /* sender's cgroup v2 id (inode of its directory) */
	__u64 peer_cgroup_id; /* 0 when unknown */
	__u32 pidns;          /* inode of the sender's pid namespace */
	__u32 nspid;          /* sender's pid in that namespace */
	__u32 mntns;          /* inode of the sender's mount namespace */
	__u32 peer_pidns;     /* the peer's three, 0 when unknown */
	__u32 peer_nspid;
	__u32 peer_mntns;
};

/* Header flags the writer adds to the kernel's (same 16 bits). */
enum unixsock_link_flags {
	UNIXSOCK_F_LOST = 1 << 5,           /* part of the message was lost (ring buffer full) */
	UNIXSOCK_F_MORE = 1 << 6,           /* the message continues in the next record */
	UNIXSOCK_F_CTRL_MALFORMED = 1 << 7, /* ancillary data did not parse as cmsghdr records */
	/* the ring dropped whole messages before this one (the kernel's INLINE bit is never written) */
	UNIXSOCK_F_DROPS_BEFORE = 1 << 8,
};

/* Header options: u16 type, u16 length, value, zero padding to 4. */
enum unixsock_link_tlv {
	UNIXSOCK_TLV_LOCAL_PATH = 1,
	UNIXSOCK_TLV_PEER_PATH = 2,
	UNIXSOCK_TLV_DEST_PATH = 3,
	UNIXSOCK_TLV_SCM_RIGHTS = 4,
	UNIXSOCK_TLV_SCM_CREDENTIALS = 5,
	UNIXSOCK_TLV_CMSG_OTHER = 6,
	/* the sender's and the peer's container, when their cgroup names one
	 * (resolved in user space: src/identity.ts): its id, and its name when the
	 * runtime gave one; UTF-8, no NUL */
	UNIXSOCK_TLV_CONTAINER_ID = 7,
	UNIXSOCK_TLV_CONTAINER_NAME = 8,
	UNIXSOCK_TLV_PEER_CONTAINER_ID = 9,
	UNIXSOCK_TLV_PEER_CONTAINER_NAME = 10,
};

/*
 * The largest pcapng block a capture writes, header, options and padding
 * included: dumpcap, which reads every live capture (the extcap fifo, `-i -`,
 * sshdump), refuses a larger block and ends the capture ("Frame 1 too long"):
 * its pipe reader compares the block total length with
 * WTAP_MAX_PACKET_SIZE_STANDARD (262144) in 4.0 to 4.6, whatever the link
 * type. A longer send is split over records (flag MORE).
 */
#define UNIXSOCK_MAX_BLOCK 262144
/* enhanced packet block bytes around the packet data: 28 of head, the
 * direction option (12), the trailing length (4) */
#define UNIXSOCK_EPB_HEAD 28
#define UNIXSOCK_EPB_OVERHEAD (UNIXSOCK_EPB_HEAD + 12 + 4)

/*
 * The stream view's addresses (wireshark/unixsock.lua) and the names the
 * capture gives them (pcapng name resolution blocks, native/pcapng_out.h):
 * IPv6 addresses whose first 64 bits are this ULA prefix,
 * fd75:6e69:7873:6f63::/64 (fd, then "unixsoc" in ASCII), and whose last 64
 * bits are a side's cgroup id (0: not known). docs/link-header.md.
 */
#define UNIXSOCK_VIEW_PREFIX_HI 0xfd756e69
#define UNIXSOCK_VIEW_PREFIX_LO 0x78736f63

#endif /* UNIXSOCK_H */
