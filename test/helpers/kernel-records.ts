// The TypeScript copy of what the addon's writer (native/pcapng_out.h) does
// with kernel records: join the MSG, DATA and CTRL records of each send
// (bpf/unixsock.h). The product has one implementation, the writer's; this is
// the oracle the tests check it against (and test the records with).
import { COMM_LEN, DATA, INLINE_MAX, MSG, PATH_MAX, REC_KIND } from '../../src/generated/vocab';
import { FLAG, type UnixMessage } from '../../src/records';

/** Record kinds and sizes of bpf/unixsock.h (src/generated/vocab.ts). */
export const REC = {
  ...REC_KIND,
  MSG_SIZE: MSG.size,
  INLINE_MAX,
  DATA_HDR_SIZE: DATA.size,
  PATH_MAX,
  COMM_LEN,
} as const;

/** A send as the kernel reports it: with the raw cmsg buffer given to sendmsg. */
export interface KernelMessage extends UnixMessage {
  control?: Buffer;
}

function cstr(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('latin1', off, end < 0 || end > off + len ? off + len : end);
}

const O = MSG.off;

/** Decodes a raw unixsock_msg record (host byte order, little-endian on x86_64). */
export function decodeMsgRecord(b: Buffer, off = 0): KernelMessage {
  const localLen = Math.min(b.readUInt8(off + O.local_path_len), REC.PATH_MAX);
  const peerLen = Math.min(b.readUInt8(off + O.peer_path_len), REC.PATH_MAX);
  return {
    sockType: b.readUInt8(off + O.sock_type),
    strategy: b.readUInt8(off + O.strategy),
    peerPathIsDest: b.readUInt8(off + O.peer_path_dest) === 1,
    flags: b.readUInt16LE(off + O.flags),
    syscall: b.readUInt32LE(off + O.syscall),
    pid: b.readUInt32LE(off + O.pid),
    tid: b.readUInt32LE(off + O.tid),
    uid: b.readUInt32LE(off + O.uid),
    gid: b.readUInt32LE(off + O.gid),
    peerPid: b.readUInt32LE(off + O.peer_pid),
    msgLen: b.readUInt32LE(off + O.msg_len),
    // cap_len and ctrl_len are read by the assembler
    pathDev: b.readUInt32LE(off + O.path_dev),
    ts: b.readBigUInt64LE(off + O.ts),
    ino: b.readBigUInt64LE(off + O.ino),
    peerIno: b.readBigUInt64LE(off + O.peer_ino),
    pathIno: b.readBigUInt64LE(off + O.path_ino),
    cgroupId: b.readBigUInt64LE(off + O.cgroup_id),
    peerCgroupId: b.readBigUInt64LE(off + O.peer_cgroup_id),
    pidns: b.readUInt32LE(off + O.pidns),
    nspid: b.readUInt32LE(off + O.nspid),
    mntns: b.readUInt32LE(off + O.mntns),
    peerPidns: b.readUInt32LE(off + O.peer_pidns),
    peerNspid: b.readUInt32LE(off + O.peer_nspid),
    peerMntns: b.readUInt32LE(off + O.peer_mntns),
    comm: cstr(b, off + O.comm, MSG.len.comm),
    peerComm: cstr(b, off + O.peer_comm, MSG.len.peer_comm),
    localPath: Buffer.from(b.subarray(off + O.local_path, off + O.local_path + localLen)),
    peerPath: Buffer.from(b.subarray(off + O.peer_path, off + O.peer_path + peerLen)),
    payload: Buffer.alloc(0),
  };
}

interface Pending {
  msg: KernelMessage;
  capLen: number;
  ctrlLen: number;
  chunks: Buffer[];
  got: number;
  needCtrl: boolean;
}

/**
 * Joins MSG, DATA and CTRL records of each send. Records of one send come from
 * one thread in order, so pending sends are keyed by thread id.
 */
export class Assembler {
  private pending = new Map<number, Pending>();
  readonly stats = { messages: 0, incomplete: 0, orphanRecords: 0, badRecords: 0 };

  constructor(private readonly emit: (m: KernelMessage) => void) {}

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
      const capLen = r.readUInt32LE(O.cap_len);
      const ctrlLen = r.readUInt32LE(O.ctrl_len);
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
        p.chunks.push(r.subarray(O.inline_data, O.inline_data + n));
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
    const len = r.readUInt32LE(DATA.off.len);
    const tid = r.readUInt32LE(DATA.off.tid);
    const ts = r.readBigUInt64LE(DATA.off.ts);
    const p = this.pending.get(tid);
    if (!p || p.msg.ts !== ts || REC.DATA_HDR_SIZE + len > r.length) {
      this.stats.orphanRecords++;
      return;
    }
    // a view, not a copy: the batch stays alive as long as a message refers to it
    const data = r.subarray(DATA.off.data, DATA.off.data + len);
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
