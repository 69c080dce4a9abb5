// The unixsock link-layer header written before each payload in the pcapng
// file (LINKTYPE_USERn). Byte-by-byte description: docs/link-header.md; the
// writer is the addon's (native/pcapng_out.h), the Lua dissector
// (wireshark/unixsock.lua) reads the same layout, and so does this decoder
// (the readable dump, the tests; test/helpers/link-encode.ts is the
// reference encoder the writer is checked against).
import { EPB_OVERHEAD, LINK_FLAGS, LINK_HEADER, LINK_TLV, LINK_VERSION, MAX_BLOCK, MSG_FLAGS } from './generated/vocab';

export { EPB_OVERHEAD, MAX_BLOCK } from './generated/vocab';
/** The fixed part of the header (struct unixsock_link_header in bpf/unixsock.h). */
export const FIXED_LEN = LINK_HEADER.size;
/** Version 1's fixed part: everything before the identity fields version 2 added. */
export const FIXED_LEN_V1 = LINK_HEADER.off.cgroup_id;

/**
 * Payload bytes one record may carry after a header of hdrLen bytes (a
 * multiple of 4): a send longer than that is split over records (flag MORE).
 * MAX_BLOCK is dumpcap's limit (bpf/unixsock.h says why).
 */
export function maxRecordPayload(hdrLen: number): number {
  return MAX_BLOCK - EPB_OVERHEAD - hdrLen;
}

export const TLV = LINK_TLV;

const { INLINE: _kernelOnly, ...kernelFlags } = MSG_FLAGS;
/** Header flags: the kernel's (INLINE is transport only, never written) plus what the writer knows. */
export const HFLAG = { ...kernelFlags, ...LINK_FLAGS } as const;

const O = LINK_HEADER.off;
const L = LINK_HEADER.len;

export interface Credentials {
  pid: number;
  uid: number;
  gid: number;
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
  /** bytes the send moved */
  msgLen: number;
  offset: number;
  pathDev: number;
  pathIno: bigint;
  comm: string;
  peerComm: string;
  /** sender's cgroup v2 id, and the peer's (0: unknown, and in version-1 records) */
  cgroupId: bigint;
  peerCgroupId: bigint;
  /** namespaces (their inodes) and the pid inside the pid namespace; the peer's 0 when unknown */
  pidns: number;
  nspid: number;
  mntns: number;
  peerPidns: number;
  peerNspid: number;
  peerMntns: number;
  containerId?: string;
  containerName?: string;
  peerContainerId?: string;
  peerContainerName?: string;
  localPath?: Buffer;
  peerPath?: Buffer;
  destPath?: Buffer;
  /** file descriptors passed with it (SCM_RIGHTS) */
  rights?: number[];
  /** credentials passed with it (SCM_CREDENTIALS) */
  creds?: Credentials;
  payload: Buffer;
}

/** Reads a record back (tests, and tools that post-process captures). */
export function decodeLinkHeader(rec: Buffer): DecodedHeader {
  if (rec.length < FIXED_LEN_V1) throw new Error(`record of ${rec.length} bytes is shorter than the header`);
  const version = rec.readUInt8(O.version);
  if (version !== LINK_VERSION && version !== 1) throw new Error(`unknown header version ${version}`);
  const fixed = version === 1 ? FIXED_LEN_V1 : FIXED_LEN;
  const headerLen = rec.readUInt16BE(O.header_len);
  if (headerLen < fixed || headerLen > rec.length) throw new Error(`bad header length ${headerLen}`);
  const v2 = version >= 2;
  const str = (o: number, len: number) => {
    const s = rec.subarray(o, o + len);
    const z = s.indexOf(0);
    return s.toString('latin1', 0, z < 0 ? len : z);
  };
  const h: DecodedHeader = {
    version,
    sockType: rec.readUInt8(O.sock_type),
    headerLen,
    flags: rec.readUInt16BE(O.flags),
    strategy: rec.readUInt8(O.strategy),
    pid: rec.readUInt32BE(O.pid),
    tid: rec.readUInt32BE(O.tid),
    uid: rec.readUInt32BE(O.uid),
    gid: rec.readUInt32BE(O.gid),
    peerPid: rec.readUInt32BE(O.peer_pid),
    syscall: rec.readUInt32BE(O.syscall),
    ino: rec.readBigUInt64BE(O.inode),
    peerIno: rec.readBigUInt64BE(O.peer_inode),
    msgLen: rec.readUInt32BE(O.msg_len),
    offset: rec.readUInt32BE(O.offset),
    pathDev: rec.readUInt32BE(O.path_dev),
    pathIno: rec.readBigUInt64BE(O.path_inode),
    comm: str(O.comm, L.comm),
    peerComm: str(O.peer_comm, L.peer_comm),
    cgroupId: v2 ? rec.readBigUInt64BE(O.cgroup_id) : 0n,
    peerCgroupId: v2 ? rec.readBigUInt64BE(O.peer_cgroup_id) : 0n,
    pidns: v2 ? rec.readUInt32BE(O.pidns) : 0,
    nspid: v2 ? rec.readUInt32BE(O.nspid) : 0,
    mntns: v2 ? rec.readUInt32BE(O.mntns) : 0,
    peerPidns: v2 ? rec.readUInt32BE(O.peer_pidns) : 0,
    peerNspid: v2 ? rec.readUInt32BE(O.peer_nspid) : 0,
    peerMntns: v2 ? rec.readUInt32BE(O.peer_mntns) : 0,
    payload: rec.subarray(headerLen),
  };
  let o = fixed;
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
    else if (type === TLV.CONTAINER_ID) h.containerId = v.toString('utf8');
    else if (type === TLV.CONTAINER_NAME) h.containerName = v.toString('utf8');
    else if (type === TLV.PEER_CONTAINER_ID) h.peerContainerId = v.toString('utf8');
    else if (type === TLV.PEER_CONTAINER_NAME) h.peerContainerName = v.toString('utf8');
    o += 4 + ((len + 3) & ~3);
  }
  return h;
}
