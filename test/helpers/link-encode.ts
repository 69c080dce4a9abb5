// The reference encoder of the record header (docs/link-header.md): what the
// addon's writer (native/pcapng_out.h) must produce, byte for byte
// (test/unit/native-writer.test.ts), and the maker of hand-built test vectors
// and of the decode benchmark's records.
import { FIXED_LEN, HFLAG, TLV } from '../../src/link-header';
import { LINK_HEADER, LINK_VERSION } from '../../src/generated/vocab';
import { parseControl } from './cmsg';
import type { KernelMessage } from './kernel-records';

const O = LINK_HEADER.off;
const L = LINK_HEADER.len;

function tlv(type: number, value: Buffer): Buffer {
  const b = Buffer.alloc(4 + ((value.length + 3) & ~3));
  b.writeUInt16BE(type, 0);
  b.writeUInt16BE(value.length, 2);
  value.copy(b, 4);
  return b;
}

/** Encodes the header of one record: `offset` is where its payload starts in the message. */
export function encodeLinkHeader(m: KernelMessage, offset: number, more: boolean): Buffer {
  const tlvs: Buffer[] = [];
  if (m.localPath.length) tlvs.push(tlv(TLV.LOCAL_PATH, m.localPath));
  if (m.peerPath.length) tlvs.push(tlv(m.peerPathIsDest ? TLV.DEST_PATH : TLV.PEER_PATH, m.peerPath));
  // the containers, as native/identity.h encodes them (bounded to 128 bytes each)
  const text = (s: string) => Buffer.from(s, 'utf8').subarray(0, 128);
  if (m.container) {
    tlvs.push(tlv(TLV.CONTAINER_ID, text(m.container.id)));
    if (m.container.name) tlvs.push(tlv(TLV.CONTAINER_NAME, text(m.container.name)));
  }
  if (m.peerContainer) {
    tlvs.push(tlv(TLV.PEER_CONTAINER_ID, text(m.peerContainer.id)));
    if (m.peerContainer.name) tlvs.push(tlv(TLV.PEER_CONTAINER_NAME, text(m.peerContainer.name)));
  }
  let flags = m.flags;
  if (m.control && offset === 0) {
    const anc = parseControl(m.control);
    if (anc.rights.length) {
      const v = Buffer.alloc(anc.rights.length * 4);
      anc.rights.forEach((fd, i) => v.writeInt32BE(fd, i * 4));
      tlvs.push(tlv(TLV.SCM_RIGHTS, v));
    }
    if (anc.creds) {
      const v = Buffer.alloc(12);
      v.writeInt32BE(anc.creds.pid, 0);
      v.writeUInt32BE(anc.creds.uid, 4);
      v.writeUInt32BE(anc.creds.gid, 8);
      tlvs.push(tlv(TLV.SCM_CREDENTIALS, v));
    }
    for (const o of anc.other) {
      const v = Buffer.alloc(8 + o.data.length);
      v.writeInt32BE(o.level, 0);
      v.writeInt32BE(o.type, 4);
      o.data.copy(v, 8);
      if (v.length <= 0xffff) tlvs.push(tlv(TLV.CMSG_OTHER, v));
    }
    if (anc.malformed) flags |= HFLAG.CTRL_MALFORMED;
  }
  if (more) flags |= HFLAG.MORE;
  const tlvLen = tlvs.reduce((n, t) => n + t.length, 0);
  const h = Buffer.alloc(FIXED_LEN + tlvLen);
  h.writeUInt8(LINK_VERSION, O.version);
  h.writeUInt8(m.sockType, O.sock_type);
  h.writeUInt16BE(h.length, O.header_len);
  h.writeUInt16BE(flags & 0xffff, O.flags);
  h.writeUInt8(m.strategy, O.strategy);
  h.writeUInt32BE(m.pid, O.pid);
  h.writeUInt32BE(m.tid, O.tid);
  h.writeUInt32BE(m.uid, O.uid);
  h.writeUInt32BE(m.gid, O.gid);
  h.writeUInt32BE(m.peerPid, O.peer_pid);
  h.writeUInt32BE(m.syscall, O.syscall);
  h.writeBigUInt64BE(m.ino, O.inode);
  h.writeBigUInt64BE(m.peerIno, O.peer_inode);
  h.writeUInt32BE(m.msgLen, O.msg_len);
  h.writeUInt32BE(offset, O.offset);
  h.writeUInt32BE(m.pathDev, O.path_dev);
  h.writeBigUInt64BE(m.pathIno, O.path_inode);
  h.write(m.comm.slice(0, L.comm), O.comm, 'latin1');
  h.write(m.peerComm.slice(0, L.peer_comm), O.peer_comm, 'latin1');
  h.writeBigUInt64BE(m.cgroupId, O.cgroup_id);
  h.writeBigUInt64BE(m.peerCgroupId, O.peer_cgroup_id);
  h.writeUInt32BE(m.pidns, O.pidns);
  h.writeUInt32BE(m.nspid, O.nspid);
  h.writeUInt32BE(m.mntns, O.mntns);
  h.writeUInt32BE(m.peerPidns, O.peer_pidns);
  h.writeUInt32BE(m.peerNspid, O.peer_nspid);
  h.writeUInt32BE(m.peerMntns, O.peer_mntns);
  let o = FIXED_LEN;
  for (const t of tlvs) {
    t.copy(h, o);
    o += t.length;
  }
  return h;
}
