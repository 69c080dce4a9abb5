// The values the executable accepts, in one place: the command line and the
// capture filter check against these, and the extcap dialog (src/extcap.ts)
// is built from them, so Wireshark refuses in the dialog what the executable
// would refuse at start (a dialog that let a ring size of 3 through failed
// only once the capture was started).

/** sun_path is 108 bytes, one of them the terminating NUL (or an abstract name's leading NUL). */
export const PATH_MAX_BYTES = 107;
/** TASK_COMM_LEN is 16 with the NUL. */
export const COMM_MAX_BYTES = 15;
/** PID_MAX_LIMIT on 64-bit kernels is 4194304; this is the largest the kernel's pid_t field leaves room for. */
export const PID_MAX = 0x3fffffff;
export const SNAPLEN_MAX = 1 << 30;
/** Kernel ring buffer sizes in MiB: BPF ring buffers are a power of two of pages. */
export const RING_SIZES_MIB: readonly number[] = Array.from({ length: 11 }, (_, i) => 1 << i);
export const RING_DEFAULT_MIB = 128;
/** LINKTYPE_USER0 to LINKTYPE_USER15. */
export const LINKTYPE_MIN = 147;
export const LINKTYPE_MAX = 162;

/**
 * The socket-path rule as a regular expression for the dialog: 1 to
 * PATH_MAX_BYTES characters after an optional trailing "*" (a prefix), and not
 * "*" alone. It counts characters, the executable counts UTF-8 bytes: a
 * non-ASCII path can pass here and still be refused at start.
 */
export const PATH_PATTERN = `^(?!\\*$).{1,${PATH_MAX_BYTES}}\\*?$`;
export const COMM_PATTERN = `^.{1,${COMM_MAX_BYTES}}$`;
/** A container name (Docker's rule) or an id prefix, 128 bytes at most: what the container filter takes. */
export const CONTAINER_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$';
/**
 * A namespace for the pidns/netns filters as the dialog checks it: an inode
 * number, TYPE:[N] as readlink prints it, or an absolute path to a namespace
 * file. It cannot tell a 10-digit number above 2^32 - 1, nor a file that is no
 * namespace: the executable refuses those at start.
 */
export const nsPattern = (type: 'pid' | 'net') => `^([1-9][0-9]{0,9}|${type}:\\[[1-9][0-9]{0,9}\\]|/.{0,4095})$`;
