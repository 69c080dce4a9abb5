// Kernel records (bpf/unixsock.h) built by hand from messages, in the batch
// format the addon's writer takes: repeated [u32 length][u32 0][record][pad to 8].
import { FLAG, REC, type UnixMessage } from '../../src/records';

/** The MSG record of m (little-endian, x86_64), the payload inside it when inline. */
export function msgRecord(m: UnixMessage, capLen: number, ctrlLen: number, inline = false): Buffer {
  const b = Buffer.alloc(REC.MSG_SIZE);
  b[0] = REC.MSG;
  b[1] = m.sockType;
  b[2] = m.strategy;
  b[3] = m.localPath.length;
  b[4] = m.peerPath.length;
  b[5] = m.peerPathIsDest ? 1 : 0;
  b.writeUInt16LE((m.flags | (inline ? FLAG.INLINE : 0)) & 0xffff, 6);
  b.writeUInt32LE(m.syscall, 8);
  b.writeUInt32LE(m.pid, 12);
  b.writeUInt32LE(m.tid, 16);
  b.writeUInt32LE(m.uid, 20);
  b.writeUInt32LE(m.gid, 24);
  b.writeUInt32LE(m.peerPid, 28);
  b.writeUInt32LE(m.msgLen, 32);
  b.writeUInt32LE(capLen, 36);
  b.writeUInt32LE(ctrlLen, 40);
  b.writeUInt32LE(m.pathDev, 44);
  b.writeBigUInt64LE(m.ts, 48);
  b.writeBigUInt64LE(m.ino, 56);
  b.writeBigUInt64LE(m.peerIno, 64);
  b.writeBigUInt64LE(m.pathIno, 72);
  b.write(m.comm, 80, REC.COMM_LEN, 'latin1');
  b.write(m.peerComm, 96, REC.COMM_LEN, 'latin1');
  m.localPath.copy(b, 112, 0, REC.PATH_MAX);
  m.peerPath.copy(b, 220, 0, REC.PATH_MAX);
  if (inline) m.payload.copy(b, REC.MSG_SIZE - REC.INLINE_MAX, 0, REC.INLINE_MAX);
  return b;
}

/** A DATA or CTRL record of thread tid, send ts. */
export function dataRecord(kind: number, tid: number, ts: bigint, data: Buffer): Buffer {
  const b = Buffer.alloc(REC.DATA_HDR_SIZE + data.length);
  b[0] = kind;
  b.writeUInt32LE(data.length, 4);
  b.writeUInt32LE(tid, 8);
  b.writeBigUInt64LE(ts, 16);
  data.copy(b, REC.DATA_HDR_SIZE);
  return b;
}

/**
 * The records the kernel makes of m: MSG (payload inline when it is at most
 * 64 bytes), DATA fragments of at most `fragment` bytes, CTRL when m.control.
 * dropFragments leaves out the last fragments (the ring had no room).
 */
export function recordsOf(m: UnixMessage, o: { fragment?: number; dropFragments?: number } = {}): Buffer[] {
  const frag = o.fragment ?? 65536;
  const inline = m.payload.length <= REC.INLINE_MAX && m.payload.length > 0;
  const ctrl = m.control;
  const flags = ctrl ? m.flags | FLAG.HAS_CTRL : m.flags;
  const recs = [msgRecord({ ...m, flags }, m.payload.length, ctrl?.length ?? 0, inline)];
  if (!inline) {
    const frags: Buffer[] = [];
    for (let off = 0; off < m.payload.length; off += frag) frags.push(m.payload.subarray(off, off + frag));
    frags.splice(frags.length - (o.dropFragments ?? 0));
    for (const f of frags) recs.push(dataRecord(REC.DATA, m.tid, m.ts, f));
  }
  if (ctrl) recs.push(dataRecord(REC.CTRL, m.tid, m.ts, ctrl));
  return recs;
}

/** Records joined in the batch format. */
export function batch(records: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const r of records) {
    const h = Buffer.alloc(8);
    h.writeUInt32LE(r.length, 0);
    parts.push(h, r, Buffer.alloc(((r.length + 7) & ~7) - r.length));
  }
  return Buffer.concat(parts);
}
