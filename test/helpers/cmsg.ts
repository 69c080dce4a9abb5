// Ancillary data (struct cmsghdr list, x86_64 layout) as sendmsg() was given it: the
// TypeScript copy of the parse native/pcapng_out.h does (ControlTlvs), the tests' oracle.

export const SOL_SOCKET = 1;
export const SCM_RIGHTS = 1;
export const SCM_CREDENTIALS = 2;

export interface Credentials {
  pid: number;
  uid: number;
  gid: number;
}

export interface Ancillary {
  rights: number[];
  creds?: Credentials;
  other: { level: number; type: number; data: Buffer }[];
  /** the buffer ended inside a header or its data */
  malformed: boolean;
}

const HDR = 16; // u64 cmsg_len, i32 level, i32 type
const align = (n: number) => (n + 7) & ~7;

export function parseControl(buf: Buffer): Ancillary {
  const out: Ancillary = { rights: [], other: [], malformed: false };
  let o = 0;
  while (o + HDR <= buf.length) {
    const lenBig = buf.readBigUInt64LE(o);
    const level = buf.readInt32LE(o + 8);
    const type = buf.readInt32LE(o + 12);
    if (lenBig < BigInt(HDR) || lenBig > BigInt(buf.length - o)) {
      out.malformed = true;
      break;
    }
    const len = Number(lenBig);
    const data = buf.subarray(o + HDR, o + len);
    if (level === SOL_SOCKET && type === SCM_RIGHTS) {
      for (let i = 0; i + 4 <= data.length; i += 4) out.rights.push(data.readInt32LE(i));
    } else if (level === SOL_SOCKET && type === SCM_CREDENTIALS && data.length >= 12) {
      out.creds = { pid: data.readInt32LE(0), uid: data.readUInt32LE(4), gid: data.readUInt32LE(8) };
    } else {
      out.other.push({ level, type, data: Buffer.from(data) });
    }
    o += align(len);
  }
  if (o < buf.length && buf.length - o < HDR && buf.subarray(o).some((b) => b !== 0)) out.malformed = true;
  return out;
}
