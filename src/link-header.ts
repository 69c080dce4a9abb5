// The unixsock link-layer header written before each payload in the pcapng
// file (LINKTYPE_USERn). Byte-by-byte description: docs/link-header.md; the
// Lua dissector (wireshark/unixsock.lua) reads the same layout.
import { parseControl } from './cmsg';
import { FLAG, REC, type UnixMessage } from './records';

export const LINK_HEADER_VERSION = 1;
export const FIXED_LEN = 104;

/**
 * The largest pcapng block a unixsock capture writes, header, options and
 * padding included. dumpcap, which reads every live capture (the extcap fifo,
 * `-i -`, sshdump), refuses a larger block and ends the capture ("Frame 1 too
 * long"): its pipe reader compares the block total length with
 * WTAP_MAX_PACKET_SIZE_STANDARD (262144) in 4.0 to 4.6, whatever the link
 * type (the per-link-type sizes apply to pcap pipes only).
 */
export const MAX_BLOCK = 262144;
/** Enhanced packet block bytes around the packet data: 28 of head, the direction option (12), the trailing length (4). */
export const EPB_OVERHEAD = 28 + 12 + 4;

/**
 * Payload bytes one record may carry after a header of hdrLen bytes (a
 * multiple of 4): a send longer than that is split over records (flag MORE).
 */
export function maxRecordPayload(hdrLen: number): number {
  return MAX_BLOCK - EPB_OVERHEAD - hdrLen;
}

export const TLV = {
  LOCAL_PATH: 1,
  PEER_PATH: 2,
  DEST_PATH: 3,
  SCM_RIGHTS: 4,
  SCM_CREDENTIALS: 5,
  CMSG_OTHER: 6,
} as const;

/** Header flags (the kernel's flags plus what the writer knows). */
export const HFLAG = {
  TRUNCATED: FLAG.TRUNCATED,
  NO_PAYLOAD: FLAG.NO_PAYLOAD,
  HAS_CTRL: FLAG.HAS_CTRL,
  CTRL_TRUNC: FLAG.CTRL_TRUNC,
  PEER_GUESS: FLAG.PEER_GUESS,
  LOST: FLAG.LOST,
  /** the message continues in the next record */
  MORE: 1 << 6,
  /** ancillary data could not be parsed */
  CTRL_MALFORMED: 1 << 7,
} as const;

function tlv(type: number, value: Buffer): Buffer {
  const b = Buffer.alloc(4 + ((value.length + 3) & ~3));
  b.writeUInt16BE(type, 0);
  b.writeUInt16BE(value.length, 2);
  value.copy(b, 4);
  return b;
}

/**
 * Encodes the header of one record: `offset` is where its payload starts in
 * the message. Captures are written by the addon (native/pcapng_out.h); this
 * is the reference it is tested against (test/unit/native-writer.test.ts) and
 * what hand-built test vectors and the decode benchmark use.
 */
export function encodeLinkHeader(m: UnixMessage, offset: number, more: boolean): Buffer {
  const tlvs: Buffer[] = [];
  if (m.localPath.length) tlvs.push(tlv(TLV.LOCAL_PATH, m.localPath));
  if (m.peerPath.length) tlvs.push(tlv(m.peerPathIsDest ? TLV.DEST_PATH : TLV.PEER_PATH, m.peerPath));
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
  h.writeUInt8(LINK_HEADER_VERSION, 0);
  h.writeUInt8(m.sockType, 1);
  h.writeUInt16BE(h.length, 2);
  h.writeUInt16BE(flags & 0xffff, 4);
  h.writeUInt8(m.strategy, 6);
  h.writeUInt32BE(m.pid, 8);
  h.writeUInt32BE(m.tid, 12);
  h.writeUInt32BE(m.uid, 16);
  h.writeUInt32BE(m.gid, 20);
  h.writeUInt32BE(m.peerPid, 24);
  h.writeUInt32BE(m.syscall, 28);
  h.writeBigUInt64BE(m.ino, 32);
  h.writeBigUInt64BE(m.peerIno, 40);
  h.writeUInt32BE(m.msgLen, 48);
  h.writeUInt32BE(offset, 52);
  h.writeUInt32BE(m.pathDev, 56);
  h.writeBigUInt64BE(m.pathIno, 64);
  h.write(m.comm.slice(0, REC.COMM_LEN), 72, 'latin1');
  h.write(m.peerComm.slice(0, REC.COMM_LEN), 88, 'latin1');
  let o = FIXED_LEN;
  for (const t of tlvs) {
    t.copy(h, o);
    o += t.length;
  }
  return h;
}

export interface DecodedHeader {
  version: number;
  sockType: number;
  headerLen: number;
  flags: number;
  strategy: number;
  pid: number;
  tid: number;
  uid: number;
  gid: number;
  peerPid: number;
  syscall: number;
  ino: bigint;
  peerIno: bigint;
  msgLen: number;
  offset: number;
  pathDev: number;
  pathIno: bigint;
  comm: string;
  peerComm: string;
  localPath?: Buffer;
  peerPath?: Buffer;
  destPath?: Buffer;
  rights?: number[];
  creds?: { pid: number; uid: number; gid: number };
  payload: Buffer;
}

/** Reads a record back (tests, and tools that post-process captures). */
export function decodeLinkHeader(rec: Buffer): DecodedHeader {
  if (rec.length < FIXED_LEN) throw new Error(`record of ${rec.length} bytes is shorter than the header`);
  const version = rec.readUInt8(0);
  if (version !== LINK_HEADER_VERSION) throw new Error(`unknown header version ${version}`);
  const headerLen = rec.readUInt16BE(2);
  if (headerLen < FIXED_LEN || headerLen > rec.length) throw new Error(`bad header length ${headerLen}`);
  const str = (o: number) => {
    const s = rec.subarray(o, o + 16);
    const z = s.indexOf(0);
    return s.toString('latin1', 0, z < 0 ? 16 : z);
  };
  const h: DecodedHeader = {
    version,
    sockType: rec.readUInt8(1),
    headerLen,
    flags: rec.readUInt16BE(4),
    strategy: rec.readUInt8(6),
    pid: rec.readUInt32BE(8),
    tid: rec.readUInt32BE(12),
    uid: rec.readUInt32BE(16),
    gid: rec.readUInt32BE(20),
    peerPid: rec.readUInt32BE(24),
    syscall: rec.readUInt32BE(28),
    ino: rec.readBigUInt64BE(32),
    peerIno: rec.readBigUInt64BE(40),
    msgLen: rec.readUInt32BE(48),
    offset: rec.readUInt32BE(52),
    pathDev: rec.readUInt32BE(56),
    pathIno: rec.readBigUInt64BE(64),
    comm: str(72),
    peerComm: str(88),
    payload: rec.subarray(headerLen),
  };
  let o = FIXED_LEN;
  while (o + 4 <= headerLen) {
    const type = rec.readUInt16BE(o);
    const len = rec.readUInt16BE(o + 2);
    if (o + 4 + len > headerLen) throw new Error('option runs past the header');
    const v = rec.subarray(o + 4, o + 4 + len);
    if (type === TLV.LOCAL_PATH) h.localPath = v;
    else if (type === TLV.PEER_PATH) h.peerPath = v;
    else if (type === TLV.DEST_PATH) h.destPath = v;
    else if (type === TLV.SCM_RIGHTS) h.rights = Array.from({ length: len / 4 }, (_, i) => v.readInt32BE(i * 4));
    else if (type === TLV.SCM_CREDENTIALS && len >= 12) h.creds = { pid: v.readInt32BE(0), uid: v.readUInt32BE(4), gid: v.readUInt32BE(8) };
    o += 4 + ((len + 3) & ~3);
  }
  return h;
}
