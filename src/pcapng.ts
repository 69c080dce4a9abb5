// A small pcapng writer: section header, one interface and a closing
// interface statistics block around the enhanced packet blocks the addon
// writes (native/pcapng_out.h; test/helpers/pcapng-write.ts makes them in
// TypeScript for tests and the bench). Blocks are built whole in memory and
// written whole, so a reader never sees half a block.
import * as fs from 'node:fs';

export const pad4 = (n: number) => (n + 3) & ~3;

/** A block's options, each padded to 32 bits, then opt_endofopt. */
export class Options {
  private parts: Buffer[] = [];
  add(code: number, value: Buffer): this {
    const h = Buffer.alloc(4);
    h.writeUInt16LE(code, 0);
    h.writeUInt16LE(value.length, 2);
    this.parts.push(h, value, Buffer.alloc(pad4(value.length) - value.length));
    return this;
  }
  str(code: number, s: string | undefined): this {
    return s ? this.add(code, Buffer.from(s, 'utf8')) : this;
  }
  u32(code: number, v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0, 0);
    return this.add(code, b);
  }
  u64(code: number, v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt.asUintN(64, v), 0);
    return this.add(code, b);
  }
  /** a timestamp as pcapng stores it: high then low 32 bits */
  ts(code: number, ns: bigint): this {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(Number((ns >> 32n) & 0xffffffffn), 0);
    b.writeUInt32LE(Number(ns & 0xffffffffn), 4);
    return this.add(code, b);
  }
  build(): Buffer {
    if (this.parts.length === 0) return Buffer.alloc(0);
    return Buffer.concat([...this.parts, Buffer.alloc(4)]); // opt_endofopt
  }
}

function block(type: number, body: Buffer[]): Buffer {
  const len = 12 + body.reduce((n, b) => n + b.length, 0);
  const head = Buffer.alloc(8);
  head.writeUInt32LE(type, 0);
  head.writeUInt32LE(len, 4);
  const tail = Buffer.alloc(4);
  tail.writeUInt32LE(len, 0);
  return Buffer.concat([head, ...body, tail], len);
}

export interface SectionInfo {
  hardware: string;
  os: string;
  application: string;
}

export interface InterfaceInfo {
  linktype: number;
  snaplen: number;
  name: string;
  description: string;
  filter?: string;
}

export interface StatsInfo {
  tsNs: bigint;
  startNs: bigint;
  endNs: bigint;
  received: bigint;
  dropped: bigint;
  delivered: bigint;
}

export function sectionHeaderBlock(info: SectionInfo): Buffer {
  const fixed = Buffer.alloc(16);
  fixed.writeUInt32LE(0x1a2b3c4d, 0);
  fixed.writeUInt16LE(1, 4);
  fixed.writeUInt16LE(0, 6);
  fixed.writeBigInt64LE(-1n, 8);
  const opts = new Options().str(2, info.hardware).str(3, info.os).str(4, info.application).build();
  return block(0x0a0d0d0a, [fixed, opts]);
}

export function interfaceBlock(info: InterfaceInfo): Buffer {
  const fixed = Buffer.alloc(8);
  fixed.writeUInt16LE(info.linktype, 0);
  fixed.writeUInt32LE(info.snaplen, 4);
  const o = new Options()
    .str(2, info.name)
    .str(3, info.description)
    .add(9, Buffer.from([9]));
  if (info.filter) o.add(11, Buffer.concat([Buffer.from([0]), Buffer.from(info.filter, 'utf8')]));
  return block(1, [fixed, o.build()]);
}

export function statsBlock(s: StatsInfo): Buffer {
  const fixed = Buffer.alloc(12);
  fixed.writeUInt32LE(0, 0);
  fixed.writeUInt32LE(Number((s.tsNs >> 32n) & 0xffffffffn), 4);
  fixed.writeUInt32LE(Number(s.tsNs & 0xffffffffn), 8);
  const opts = new Options().ts(2, s.startNs).ts(3, s.endNs).u64(4, s.received).u64(5, s.dropped).u64(8, s.delivered).build();
  return block(5, [fixed, opts]);
}

/** A failed write of `what` as the sentence users see (EPIPE and ENOSPC have their own). */
export function writeError(what: string, code: string, detail: string): WriteError {
  if (code === 'EPIPE') return new WriteError(`${what}: the reader went away`, 'EPIPE');
  if (code === 'ENOSPC') return new WriteError(`${what}: disk full`, 'ENOSPC');
  return new WriteError(`${what}: ${detail}`, code);
}

export class WriteError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'WriteError';
  }
}

/** Something to Atomics.wait on: a 1 ms sleep while a full pipe drains. */
const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Buffers whole blocks and writes them to a file descriptor (file, fifo or
 * stdout) with blocking writes: a slow reader slows the capture down, and
 * what cannot be taken from the kernel in time is counted as dropped there.
 */
export class PcapngWriter {
  private queue: Buffer[] = [];
  private queued = 0;
  private readonly regularFile: boolean;
  bytesWritten = 0;

  constructor(
    private readonly fd: number,
    private readonly what: string,
    private readonly flushBytes = 1 << 20,
  ) {
    this.regularFile = fs.fstatSync(fd).isFile();
  }

  write(block: Buffer | Buffer[]): void {
    for (const b of Array.isArray(block) ? block : [block]) {
      this.queue.push(b);
      this.queued += b.length;
    }
    if (this.queued >= this.flushBytes) this.flush();
  }

  /** Writes every queued part with writev; partial writes continue where they stopped. */
  flush(): void {
    if (this.queued === 0) return;
    let parts = this.queue;
    const total = this.queued;
    this.queue = [];
    this.queued = 0;
    let done = 0;
    while (parts.length) {
      let n: number;
      try {
        n = fs.writevSync(this.fd, parts.length > 1024 ? parts.slice(0, 1024) : parts);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (err.code === 'EAGAIN') {
          // a non-blocking pipe (a shell's stdout can be one) is full: wait for its reader, never drop
          Atomics.wait(pause, 0, 0, 1);
          continue;
        }
        // a file keeps only whole blocks: cut what this flush half wrote
        if (this.regularFile && done > 0) {
          try {
            fs.ftruncateSync(this.fd, this.bytesWritten);
          } catch {
            // the write error below says what matters
          }
        }
        throw writeError(this.what, err.code ?? 'EIO', err.message);
      }
      done += n;
      let i = 0;
      while (i < parts.length && n >= parts[i].length) n -= parts[i++].length;
      parts = parts.slice(i);
      if (n > 0) parts[0] = parts[0].subarray(n);
    }
    this.bytesWritten += total;
  }
}
