// Enhanced packet blocks made in TypeScript, for tests and the bench only: a
// capture's packet blocks are written by the addon (native/pcapng_out.h), and
// src/pcapng.ts makes the blocks around them.
import * as fs from 'node:fs';
import { MAX_BLOCK } from '../../src/generated/vocab';
import { Options, PcapngWriter, interfaceBlock, pad4, sectionHeaderBlock } from '../../src/pcapng';

export interface PacketInfo {
  /** wall-clock nanoseconds since the epoch */
  tsNs: bigint;
  /** the packet's bytes, whole or in parts (written without being joined) */
  data: Buffer | Buffer[];
  origLen: number;
  /** pcapng epb_flags direction: 0 unknown, 1 inbound, 2 outbound */
  direction?: 0 | 1 | 2;
}

/** An enhanced packet block as parts: its head, the data as given, then padding, options and trailer. */
export function packetParts(p: PacketInfo): Buffer[] {
  const data = Array.isArray(p.data) ? p.data : [p.data];
  const capLen = data.reduce((n, b) => n + b.length, 0);
  const opts = p.direction ? new Options().u32(2, p.direction).build() : Buffer.alloc(0);
  const padding = pad4(capLen) - capLen;
  const len = 32 + pad4(capLen) + opts.length;
  const head = Buffer.alloc(28);
  head.writeUInt32LE(6, 0);
  head.writeUInt32LE(len, 4);
  head.writeUInt32LE(0, 8);
  head.writeUInt32LE(Number((p.tsNs >> 32n) & 0xffffffffn), 12);
  head.writeUInt32LE(Number(p.tsNs & 0xffffffffn), 16);
  head.writeUInt32LE(capLen, 20);
  head.writeUInt32LE(p.origLen, 24);
  const tail = Buffer.alloc(padding + opts.length + 4);
  opts.copy(tail, padding);
  tail.writeUInt32LE(len, tail.length - 4);
  return [head, ...data, tail];
}

export function packetBlock(p: PacketInfo): Buffer {
  return Buffer.concat(packetParts(p));
}

/** The capture's pcapng writer, with packet blocks from TypeScript. */
export class PacketWriter extends PcapngWriter {
  packets = 0;

  packet(p: PacketInfo): void {
    this.packets++;
    this.write(packetParts(p));
  }
}

/** Writes records as one whole pcapng file, a microsecond apart (test vectors, benchmarks). */
export function writePcapngFile(file: string, linktype: number, records: Buffer[], application = 'unixsock'): void {
  const fd = fs.openSync(file, 'w');
  try {
    const w = new PacketWriter(fd, file);
    w.write(sectionHeaderBlock({ hardware: application, os: application, application }));
    w.write(interfaceBlock({ linktype, snaplen: MAX_BLOCK, name: 'unixsock', description: application }));
    records.forEach((data, i) => w.packet({ tsNs: 1_700_000_000_000_000_000n + BigInt(i) * 1000n, data, origLen: data.length }));
    w.flush();
  } finally {
    fs.closeSync(fd);
  }
}
