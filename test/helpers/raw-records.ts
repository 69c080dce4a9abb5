// Kernel records (bpf/unixsock.h) built by hand from messages, in the batch
// format the addon's writer takes: repeated [u32 length][u32 0][record][pad to 8].
import { DATA, MSG } from '../../src/generated/vocab';
import { FLAG } from '../../src/records';
import { REC, type KernelMessage } from './kernel-records';

const O = MSG.off;

/** The MSG record of m (little-endian, x86_64), the payload inside it when inline. */
export function msgRecord(m: KernelMessage, capLen: number, ctrlLen: number, inline = false): Buffer {
  const b = Buffer.alloc(MSG.size);
  b[O.kind] = REC.MSG;
  b[O.sock_type] = m.sockType;
  b[O.strategy] = m.strategy;
  b[O.local_path_len] = m.localPath.length;
  b[O.peer_path_len] = m.peerPath.length;
  b[O.peer_path_dest] = m.peerPathIsDest ? 1 : 0;
  b.writeUInt16LE((m.flags | (inline ? FLAG.INLINE : 0)) & 0xffff, O.flags);
  b.writeUInt32LE(m.syscall, O.syscall);
  b.writeUInt32LE(m.pid, O.pid);
  b.writeUInt32LE(m.tid, O.tid);
  b.writeUInt32LE(m.uid, O.uid);
  b.writeUInt32LE(m.gid, O.gid);
  b.writeUInt32LE(m.peerPid, O.peer_pid);
  b.writeUInt32LE(m.msgLen, O.msg_len);
  b.writeUInt32LE(capLen, O.cap_len);
  b.writeUInt32LE(ctrlLen, O.ctrl_len);
  b.writeUInt32LE(m.pathDev, O.path_dev);
  b.writeBigUInt64LE(m.ts, O.ts);
  b.writeBigUInt64LE(m.ino, O.ino);
  b.writeBigUInt64LE(m.peerIno, O.peer_ino);
  b.writeBigUInt64LE(m.pathIno, O.path_ino);
  b.writeBigUInt64LE(m.cgroupId, O.cgroup_id);
  b.writeBigUInt64LE(m.peerCgroupId, O.peer_cgroup_id);
  b.writeUInt32LE(m.pidns, O.pidns);
  b.writeUInt32LE(m.nspid, O.nspid);
  b.writeUInt32LE(m.mntns, O.mntns);
  b.writeUInt32LE(m.peerPidns, O.peer_pidns);
  b.writeUInt32LE(m.peerNspid, O.peer_nspid);
  b.writeUInt32LE(m.peerMntns, O.peer_mntns);
  b.write(m.comm, O.comm, MSG.len.comm, 'latin1');
  b.write(m.peerComm, O.peer_comm, MSG.len.peer_comm, 'latin1');
  m.localPath.copy(b, O.local_path, 0, MSG.len.local_path);
  m.peerPath.copy(b, O.peer_path, 0, MSG.len.peer_path);
  if (inline) m.payload.copy(b, O.inline_data, 0, MSG.len.inline_data);
  return b;
}

/** A DATA or CTRL record of thread tid, send ts. */
export function dataRecord(kind: number, tid: number, ts: bigint, data: Buffer): Buffer {
  const b = Buffer.alloc(DATA.size + data.length);
  b[DATA.off.kind] = kind;
  b.writeUInt32LE(data.length, DATA.off.len);
  b.writeUInt32LE(tid, DATA.off.tid);
  b.writeBigUInt64LE(ts, DATA.off.ts);
  data.copy(b, DATA.off.data);
  return b;
}

/**
 * The records the kernel makes of m: MSG (payload inline when it is at most
 * 64 bytes), DATA fragments of at most `fragment` bytes, CTRL when m.control.
 * dropFragments leaves out the last fragments (the ring had no room).
 */
export function recordsOf(m: KernelMessage, o: { fragment?: number; dropFragments?: number } = {}): Buffer[] {
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
