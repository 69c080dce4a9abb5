// Record decoder: turns the native addon's batches of raw ring-buffer records
// (bpf/unixsock.h) into whole messages, one per send.

/** Layout constants of bpf/unixsock.h; checked against the addon at start. */
export const REC = {
  MSG: 1,
  DATA: 2,
  CTRL: 3,
  MSG_SIZE: 392,
  INLINE_MAX: 64,
  DATA_HDR_SIZE: 24,
  PATH_MAX: 108,
  COMM_LEN: 16,
} as const;

/** unixsock_msg.flags, and the pcapng header flags built on them. */
export const FLAG = {
  TRUNCATED: 1 << 0,
  NO_PAYLOAD: 1 << 1,
  HAS_CTRL: 1 << 2,
  CTRL_TRUNC: 1 << 3,
  PEER_GUESS: 1 << 4,
  /** set in userspace: part of the message was lost (ring buffer full) */
  LOST: 1 << 5,
  /** kernel transport detail: the payload is inside the MSG record (never written out) */
  INLINE: 1 << 8,
} as const;

export const STRATEGY_NAMES: Record<number, string> = {
  1: 'fentry',
  2: 'kprobe',
  3: 'sock_send_length',
  4: 'syscalls',
};

export const SOCK_TYPES: Record<number, string> = { 1: 'stream', 2: 'dgram', 5: 'seqpacket' };

export interface UnixMessage {
  /** CLOCK_MONOTONIC nanoseconds, as the kernel stamped it */
  ts: bigint;
  pid: number;
  tid: number;
  uid: number;
  gid: number;
  peerPid: number;
  comm: string;
  peerComm: string;
  sockType: number;
  strategy: number;
  syscall: number;
  flags: number;
  /** bytes the send moved */
  msgLen: number;
  ino: bigint;
  peerIno: bigint;
  pathIno: bigint;
  pathDev: number;
  /** raw bound path of the sending socket (abstract names start with a NUL) */
  localPath: Buffer;
  /** raw bound path of the peer, or the destination address of sendto */
  peerPath: Buffer;
  peerPathIsDest: boolean;
  /** captured bytes (cap_len of them, fewer when LOST) */
  payload: Buffer;
  /** raw cmsg buffer given to sendmsg, if any */
  control?: Buffer;
}

function cstr(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('latin1', off, end < 0 || end > off + len ? off + len : end);
}

/** Decodes a raw unixsock_msg record (host byte order, little-endian on x86_64). */
export function decodeMsgRecord(b: Buffer, off = 0): UnixMessage {
  const localLen = Math.min(b.readUInt8(off + 3), REC.PATH_MAX);
  const peerLen = Math.min(b.readUInt8(off + 4), REC.PATH_MAX);
  return {
    sockType: b.readUInt8(off + 1),
    strategy: b.readUInt8(off + 2),
    peerPathIsDest: b.readUInt8(off + 5) === 1,
    flags: b.readUInt16LE(off + 6),
    syscall: b.readUInt32LE(off + 8),
    pid: b.readUInt32LE(off + 12),
    tid: b.readUInt32LE(off + 16),
    uid: b.readUInt32LE(off + 20),
    gid: b.readUInt32LE(off + 24),
    peerPid: b.readUInt32LE(off + 28),
    msgLen: b.readUInt32LE(off + 32),
    // cap_len (off + 36) and ctrl_len (off + 40) are read by the assembler
    pathDev: b.readUInt32LE(off + 44),
    ts: b.readBigUInt64LE(off + 48),
    ino: b.readBigUInt64LE(off + 56),
    peerIno: b.readBigUInt64LE(off + 64),
    pathIno: b.readBigUInt64LE(off + 72),
    comm: cstr(b, off + 80, REC.COMM_LEN),
    peerComm: cstr(b, off + 96, REC.COMM_LEN),
    localPath: Buffer.from(b.subarray(off + 112, off + 112 + localLen)),
    peerPath: Buffer.from(b.subarray(off + 220, off + 220 + peerLen)),
    payload: Buffer.alloc(0),
  };
}

interface Pending {
  msg: UnixMessage;
  capLen: number;
  ctrlLen: number;
  chunks: Buffer[];
  got: number;
  needCtrl: boolean;
}

export interface AssemblerStats {
  messages: number;
  incomplete: number;
  orphanRecords: number;
  badRecords: number;
}

/**
 * Joins MSG, DATA and CTRL records of each send. Records of one send come from
 * one thread in order, so pending sends are keyed by thread id.
 */
export class Assembler {
  private pending = new Map<number, Pending>();
  readonly stats: AssemblerStats = { messages: 0, incomplete: 0, orphanRecords: 0, badRecords: 0 };

  constructor(private readonly emit: (m: UnixMessage) => void) {}

  /** Feeds one batch from the addon: repeated u32 length, pad, record padded to 8. */
  push(batch: Buffer): void {
    let o = 0;
    while (o + 8 <= batch.length) {
      const len = batch.readUInt32LE(o);
      const start = o + 8;
      o = start + ((len + 7) & ~7);
      if (len < 1 || start + len > batch.length) {
        this.stats.badRecords++;
        break;
      }
      this.record(batch.subarray(start, start + len));
    }
  }

  private record(r: Buffer): void {
    const kind = r[0];
    if (kind === REC.MSG) {
      if (r.length < REC.MSG_SIZE) {
        this.stats.badRecords++;
        return;
      }
      const msg = decodeMsgRecord(r);
      const prev = this.pending.get(msg.tid);
      if (prev) this.finish(prev, true);
      const capLen = r.readUInt32LE(36);
      const ctrlLen = r.readUInt32LE(40);
      const p: Pending = {
        msg,
        capLen,
        ctrlLen,
        chunks: [],
        got: 0,
        needCtrl: (msg.flags & FLAG.HAS_CTRL) !== 0,
      };
      if (msg.flags & FLAG.INLINE) {
        const n = Math.min(capLen, REC.INLINE_MAX);
        p.chunks.push(r.subarray(REC.MSG_SIZE - REC.INLINE_MAX, REC.MSG_SIZE - REC.INLINE_MAX + n));
        p.got = n;
        msg.flags &= ~FLAG.INLINE;
      }
      if (this.complete(p)) this.finish(p, false);
      else this.pending.set(msg.tid, p);
      return;
    }
    if (kind !== REC.DATA && kind !== REC.CTRL) {
      this.stats.badRecords++;
      return;
    }
    if (r.length < REC.DATA_HDR_SIZE) {
      this.stats.badRecords++;
      return;
    }
    const len = r.readUInt32LE(4);
    const tid = r.readUInt32LE(8);
    const ts = r.readBigUInt64LE(16);
    const p = this.pending.get(tid);
    if (!p || p.msg.ts !== ts || REC.DATA_HDR_SIZE + len > r.length) {
      this.stats.orphanRecords++;
      return;
    }
    // a view, not a copy: the batch stays alive as long as a message refers to it
    const data = r.subarray(REC.DATA_HDR_SIZE, REC.DATA_HDR_SIZE + len);
    if (kind === REC.DATA) {
      const room = p.capLen - p.got;
      const take = data.length > room ? data.subarray(0, room) : data;
      p.chunks.push(take);
      p.got += take.length;
    } else {
      p.msg.control = data;
      p.needCtrl = false;
    }
    if (this.complete(p)) this.finish(p, false);
  }

  private complete(p: Pending): boolean {
    return p.got >= p.capLen && !p.needCtrl;
  }

  private finish(p: Pending, lost: boolean): void {
    this.pending.delete(p.msg.tid);
    p.msg.payload = p.chunks.length === 1 ? p.chunks[0] : Buffer.concat(p.chunks, p.got);
    if (lost || p.got < p.capLen) {
      p.msg.flags |= FLAG.LOST;
      this.stats.incomplete++;
    }
    this.stats.messages++;
    this.emit(p.msg);
  }

  /** Emits every send still waiting for records (at the end of a capture). */
  flush(): void {
    for (const p of [...this.pending.values()].sort((a, b) => (a.msg.ts < b.msg.ts ? -1 : 1))) {
      this.finish(p, true);
    }
  }
}

/** A path as people write it: abstract names as @name, non-printables escaped. */
export function formatPath(raw: Buffer): string {
  if (raw.length === 0) return '';
  let b = raw;
  let prefix = '';
  if (b[0] === 0) {
    prefix = '@';
    b = b.subarray(1);
  } else {
    const nul = b.indexOf(0);
    if (nul >= 0) b = b.subarray(0, nul);
  }
  let s = prefix;
  for (const c of b) {
    if (c >= 0x20 && c < 0x7f && c !== 0x5c) s += String.fromCharCode(c);
    else if (c === 0x5c) s += '\\\\';
    else s += '\\x' + c.toString(16).padStart(2, '0');
  }
  return s;
}

/** The path a person would name the conversation by: the server's bound path. */
export function conversationPath(m: UnixMessage): Buffer {
  if (m.sockType === 2) return m.peerPath.length ? m.peerPath : m.localPath;
  return m.localPath.length ? m.localPath : m.peerPath;
}
