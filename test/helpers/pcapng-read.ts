// Reads a pcapng file back into its blocks (tests only; little-endian sections).
import * as fs from 'node:fs';

export interface Block {
  type: number;
  body: Buffer;
}

export interface Packet {
  tsNs: bigint;
  capLen: number;
  origLen: number;
  data: Buffer;
  flags?: number;
}

export interface Capture {
  blocks: Block[];
  shbOptions: Map<number, Buffer[]>;
  linktype: number;
  snaplen: number;
  idbOptions: Map<number, Buffer[]>;
  packets: Packet[];
  isb?: Map<number, Buffer[]>;
  /** name resolution blocks: address (hex digits, 8 for IPv4, 32 for IPv6) → names, in file order */
  names: Map<string, string[]>;
  /** where each name resolution block was: the number of packets before it */
  nameBlocksAt: number[];
}

/** The records of a name resolution block body (type 1 IPv4, 2 IPv6; each name NUL-terminated). */
function nameRecords(body: Buffer, into: Map<string, string[]>): void {
  let o = 0;
  while (o + 4 <= body.length) {
    const type = body.readUInt16LE(o);
    const len = body.readUInt16LE(o + 2);
    if (type === 0) return;
    const v = body.subarray(o + 4, o + 4 + len);
    const alen = type === 1 ? 4 : type === 2 ? 16 : 0;
    if (alen) {
      const addr = v.subarray(0, alen).toString('hex');
      const names = v.subarray(alen).toString('latin1').split('\0').slice(0, -1);
      into.set(addr, [...(into.get(addr) ?? []), ...names]);
    }
    o += 4 + ((len + 3) & ~3);
  }
  throw new Error('name resolution block without its end record');
}

export function options(buf: Buffer, off: number): Map<number, Buffer[]> {
  const m = new Map<number, Buffer[]>();
  while (off + 4 <= buf.length) {
    const code = buf.readUInt16LE(off);
    const len = buf.readUInt16LE(off + 2);
    if (code === 0) break;
    const v = buf.subarray(off + 4, off + 4 + len);
    m.set(code, [...(m.get(code) ?? []), v]);
    off += 4 + ((len + 3) & ~3);
  }
  return m;
}

export function parseBlocks(buf: Buffer): Block[] {
  const out: Block[] = [];
  let o = 0;
  while (o < buf.length) {
    if (o + 12 > buf.length) throw new Error(`truncated block header at ${o}`);
    const type = buf.readUInt32LE(o);
    const len = buf.readUInt32LE(o + 4);
    if (len < 12 || len % 4 !== 0 || o + len > buf.length) throw new Error(`bad block length ${len} at ${o}`);
    if (buf.readUInt32LE(o + len - 4) !== len) throw new Error(`trailing length mismatch at ${o}`);
    out.push({ type, body: buf.subarray(o + 8, o + len - 4) });
    o += len;
  }
  return out;
}

export function readPcapng(file: string | Buffer): Capture {
  const buf = typeof file === 'string' ? fs.readFileSync(file) : file;
  const blocks = parseBlocks(buf);
  if (blocks[0]?.type !== 0x0a0d0d0a) throw new Error('not a pcapng file');
  if (blocks[0].body.readUInt32LE(0) !== 0x1a2b3c4d) throw new Error('big-endian sections are not supported here');
  const c: Capture = {
    blocks,
    shbOptions: options(blocks[0].body, 16),
    linktype: -1,
    snaplen: 0,
    idbOptions: new Map(),
    packets: [],
    names: new Map(),
    nameBlocksAt: [],
  };
  for (const b of blocks.slice(1)) {
    if (b.type === 1) {
      c.linktype = b.body.readUInt16LE(0);
      c.snaplen = b.body.readUInt32LE(4);
      c.idbOptions = options(b.body, 8);
    } else if (b.type === 6) {
      const capLen = b.body.readUInt32LE(12);
      const hi = BigInt(b.body.readUInt32LE(4));
      const lo = BigInt(b.body.readUInt32LE(8));
      const opts = options(b.body, 20 + ((capLen + 3) & ~3));
      c.packets.push({
        tsNs: (hi << 32n) | lo,
        capLen,
        origLen: b.body.readUInt32LE(16),
        data: b.body.subarray(20, 20 + capLen),
        flags: opts.get(2)?.[0]?.readUInt32LE(0),
      });
    } else if (b.type === 4) {
      nameRecords(b.body, c.names);
      c.nameBlocksAt.push(c.packets.length);
    } else if (b.type === 5) {
      c.isb = options(b.body, 12);
    }
  }
  return c;
}
