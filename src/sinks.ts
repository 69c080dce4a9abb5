// Where messages go: a pcapng stream (file, fifo, stdout) or a readable dump.
import * as os from 'node:os';
import type { CaptureSummary, UnixCapture } from './capture';
import { PcapngWriter, interfaceBlock, sectionHeaderBlock, statsBlock } from './pcapng';
import { FLAG, SOCK_TYPES, conversationPath, formatPath, type UnixMessage } from './records';
import { LINK_FLAGS, MAX_BLOCK } from './generated/vocab';
import { VERSION } from './version';

/** The interface's snap length: no block is larger (bpf/unixsock.h, UNIXSOCK_MAX_BLOCK). */
export const MAX_RECORD = MAX_BLOCK;

export interface Sink {
  /** the file descriptor written to */
  readonly fd: number;
  /** what fd is, for messages */
  readonly what: string;
  /**
   * Starts the capture's delivery into this output: at most `limit` messages
   * (then onLimit, if this sink counts them itself); a failure to write, or to
   * read the ring, goes to onFailure.
   */
  start(cap: UnixCapture, limit: number | undefined, onLimit: () => void, onFailure: (e: unknown) => void): void;
  /** called every 100 ms while capturing: writes out what waits */
  tick(): void;
  /**
   * A line of the capture's own (drops) where it happened, for outputs that
   * have lines; a pcapng stream marks the next packet instead (DROPS_BEFORE).
   */
  note?(line: string): void;
  /** writes what closes the output */
  end(summary: CaptureSummary): void;
}

/**
 * A pcapng stream (file, fifo, stdout): this writes the section header and
 * interface blocks, the addon's worker thread writes the packet blocks
 * (native/pcapng_out.h), and this the closing statistics block.
 */
export class PcapngSink implements Sink {
  private w: PcapngWriter;
  constructor(
    readonly fd: number,
    readonly what: string,
    linktype: number,
    filterText: string,
  ) {
    this.w = new PcapngWriter(fd, what);
    this.w.write(
      sectionHeaderBlock({
        hardware: `${os.arch()} ${os.cpus()[0]?.model ?? ''}`.trim(),
        os: `${os.type()} ${os.release()}`,
        application: `unixsock ${VERSION}`,
      }),
    );
    this.w.write(
      interfaceBlock({
        linktype,
        snaplen: MAX_RECORD,
        name: 'unixsock',
        description: 'Unix domain sockets (all AF_UNIX sends on this host)',
        filter: filterText || undefined,
      }),
    );
    this.w.flush();
  }

  /** the addon's worker thread writes the packet blocks and counts the limit */
  start(cap: UnixCapture, limit: number | undefined, _onLimit: () => void, onFailure: (e: unknown) => void): void {
    cap.startToFd(this.fd, this.what, limit, onFailure);
  }

  tick(): void {
    // nothing waits here: the addon writes as the ring fills
  }

  end(s: CaptureSummary): void {
    this.w.write(
      statsBlock({
        tsNs: s.endNs,
        startNs: s.startNs,
        endNs: s.endNs,
        received: BigInt(s.sends),
        dropped: BigInt(s.dropped),
        delivered: BigInt(s.packets),
      }),
    );
    this.w.flush();
  }
}

function time(wallNs: bigint): string {
  const ms = Number(wallNs / 1_000_000n);
  const d = new Date(ms);
  const hh = String(d.getHours()).padStart(2, '0');
  const mm = String(d.getMinutes()).padStart(2, '0');
  const ss = String(d.getSeconds()).padStart(2, '0');
  const frac = String(wallNs % 1_000_000_000n).padStart(9, '0');
  return `${hh}:${mm}:${ss}.${frac}`;
}

export function hexdump(b: Buffer): string {
  const lines: string[] = [];
  for (let o = 0; o < b.length; o += 16) {
    const row = b.subarray(o, o + 16);
    const hex = [...row].map((c) => c.toString(16).padStart(2, '0')).join(' ');
    const asc = [...row].map((c) => (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '.')).join('');
    lines.push(`  ${o.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${asc}`);
  }
  return lines.join('\n');
}

/** Printable text: control bytes other than tab and newline shown as '.'. */
export function printable(b: Buffer): string {
  return b
    .toString('latin1')
    .replace(/\r\n/g, '\n')
    .replace(/[^\t\n\x20-\x7e]/g, '.');
}

/** One line per message, then its bytes as text or hex (like sockdump). */
export function describe(m: UnixMessage, wallNs: bigint): string {
  // "[web-1]" after a process in a container (its name, else its short id, as docker ps shows it)
  const ctr = (c: UnixMessage['container']) => (c ? ` [${c.name ?? (c.id.length === 64 ? c.id.slice(0, 12) : c.id)}]` : '');
  const peer = m.peerPid ? `${m.peerComm || '?'} ${m.peerPid}${ctr(m.peerContainer)}` : '?';
  const path = formatPath(conversationPath(m)) || '(unnamed)';
  const len = m.payload.length === m.msgLen ? `${m.msgLen}` : `${m.payload.length}/${m.msgLen}`;
  const extra: string[] = [];
  if (m.flags & FLAG.NO_PAYLOAD) extra.push('payload unreadable');
  if (m.flags & FLAG.LOST) extra.push('LOST');
  if (m.flags & LINK_FLAGS.DROPS_BEFORE) extra.push('after DROPPED messages');
  if (m.rights?.length) extra.push(`SCM_RIGHTS [${m.rights.join(',')}]`);
  if (m.creds) extra.push(`SCM_CREDENTIALS pid=${m.creds.pid} uid=${m.creds.uid} gid=${m.creds.gid}`);
  return `${time(wallNs)} ${m.comm} ${m.pid}${ctr(m.container)} > ${peer} ${path} ${SOCK_TYPES[m.sockType] ?? m.sockType} len ${len}${extra.length ? ' ' + extra.join(' ') : ''}`;
}

export class TextSink implements Sink {
  readonly what = 'stdout';
  private out: string[] = [];
  /** a write failed: the failure is reported once, and nothing more is taken */
  private failed = false;
  private readonly writer: PcapngWriter;
  constructor(
    readonly fd: number,
    private readonly hex: boolean,
  ) {
    this.writer = new PcapngWriter(fd, this.what);
  }

  /** whole messages come to JavaScript, this writes them as lines */
  start(cap: UnixCapture, limit: number | undefined, onLimit: () => void, onFailure: (e: unknown) => void): void {
    let seen = 0;
    cap.start((m) => {
      if (this.failed || (limit !== undefined && seen >= limit)) return;
      try {
        this.message(m, cap.wallNs(m.ts));
        seen++;
        if (limit !== undefined && seen >= limit) onLimit();
      } catch (e) {
        onFailure(e);
      }
    }, onFailure);
  }

  message(m: UnixMessage, wallNs: bigint): void {
    this.out.push(describe(m, wallNs));
    if (m.payload.length) this.out.push(this.hex ? hexdump(m.payload) : printable(m.payload));
    if (this.out.length > 256) this.tick();
  }

  /** A line of the capture's own (drops) between the messages, where it happened. */
  note(line: string): void {
    this.out.push(line);
  }

  tick(): void {
    if (!this.out.length) return;
    const s = this.out.join('\n') + '\n';
    this.out = [];
    try {
      // the writer goes on after a partial write and waits out EAGAIN: a reader
      // slower than the capture (a pipe to grep or less) gets every line
      this.writer.write(Buffer.from(s));
      this.writer.flush();
    } catch (e) {
      this.failed = true;
      throw e;
    }
  }

  end(): void {
    this.tick();
  }
}
