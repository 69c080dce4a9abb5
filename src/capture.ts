// The typed capture engine: opens the kernel probes through the native addon,
// assembles their records into messages, and reports statistics.
import * as fs from 'node:fs';
import { getSystemErrorMap } from 'node:util';
import { CaptureError, UsageError } from './errors';
import type { KernelFilter } from './filter';
import { RING_SIZES_MIB } from './limits';
import { loadNative, type NativeModule, type NativeAttempt, type NativeCapture, type NativeEnd, type NativeStats, type WriterScheduling } from './native';
import { writeError } from './pcapng';
import { refuseDebugger } from './guard';
import { ContainerNames } from './docker';
import { IdentityFeeder, IdentityResolver, runtimeSockets } from './identity';
import { capsAtStart, privileged } from './privilege';
import { MessageReader, type AssemblerStats, type UnixMessage } from './records';

export const STRATEGIES = ['auto', 'fentry', 'kprobe', 'sock_send_length', 'syscalls'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export interface CaptureOptions {
  filter: KernelFilter;
  strategy: Strategy;
  /** ring buffer size in bytes: a power of two, at least one page */
  ringBytes: number;
  /** bytes of each message to keep; 0 keeps all */
  snaplen: number;
  /** capture only the metadata */
  payload: boolean;
  /** how often the addon hands over a batch, in ms */
  flushMs?: number;
  /** an open file for libbpf's output */
  libbpfLogFd?: number;
  /** see only sends where the sender or the peer runs as this uid */
  ownUid?: number;
}

export interface CaptureSummary extends NativeStats {
  strategy: string;
  /** the most bytes the writer saw in use in the kernel ring, and its size */
  ringPeak?: number;
  ringSize?: number;
  /** messages lost whole in the kernel plus those that lost part of their bytes */
  dropped: number;
  assembler: AssemblerStats;
  /** pcapng packet blocks the addon wrote (0 when messages went to JavaScript) */
  packets: number;
  startNs: bigint;
  endNs: bigint;
}

/**
 * Loads the addon. It clears the effective capabilities of an executable with
 * file capabilities as it loads, so call this before opening any path a user gave.
 */
export function loadEngine(): NativeModule {
  try {
    return loadNative();
  } catch (e) {
    throw new CaptureError(`cannot load the capture engine: ${(e as Error).message}`);
  }
}

/**
 * Whether the reader of the pipe or fifo fd has gone, so that a write would
 * fail with EPIPE (a capture that writes nothing would not learn it otherwise).
 */
export function readerGone(fd: number): boolean {
  return loadEngine().readerGone(fd);
}

/** Turns the native loader's failure into one sentence that says what to do. */
export function explainOpenError(e: unknown, attempts: NativeAttempt[] | undefined, forced: string): CaptureError {
  const msg = e instanceof Error ? e.message : String(e);
  if ((e as { code?: string }).code === 'EPRIVILEGE') return new CaptureError(msg);
  if (!fs.existsSync('/sys/kernel/btf/vmlinux')) {
    return new CaptureError(
      'this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): unixsock needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian, Ubuntu and Fedora kernels have it)',
    );
  }
  if (!canLoadBpf()) {
    return new CaptureError(
      'permission denied loading eBPF programs: run as root, or install with scripts/install-extcap.sh so the executable has cap_bpf,cap_perfmon and your user is in the wireshark group',
    );
  }
  if (forced !== 'auto' && attempts?.length === 1) {
    return new CaptureError(`attach strategy "${forced}" does not work on this kernel: ${attempts[0].error}; use --strategy auto`);
  }
  const detail = (attempts ?? []).map((a) => `${a.strategy}: ${a.error}`).join('; ');
  return new CaptureError(
    `no attach strategy works on this kernel (${detail || msg}); unixsock needs Linux >= 6.3, or fentry/kprobe support, or syscall tracepoints with tracefs`,
  );
}

/**
 * Whether this process could load BPF programs at all: root, CAP_BPF or
 * CAP_SYS_ADMIN, as it started (the addon clears the capabilities as it works).
 */
function canLoadBpf(): boolean {
  if (process.geteuid?.() === 0) return true;
  const caps = capsAtStart();
  return ((caps >> 39n) & 1n) === 1n || ((caps >> 21n) & 1n) === 1n;
}

export function ringBytesFromMiB(mib: number): number {
  if (!RING_SIZES_MIB.includes(mib)) {
    throw new UsageError(`ring buffer size: ${mib} MiB is not a power of two between ${RING_SIZES_MIB[0]} and ${RING_SIZES_MIB[RING_SIZES_MIB.length - 1]}`);
  }
  return mib * 1024 * 1024;
}

export class UnixCapture {
  readonly strategy: string;
  readonly attempts: NativeAttempt[];
  /** milliseconds of each phase of the open, for the log (the loader's: NativeCapture.timings) */
  readonly timings: string;
  /** CLOCK_REALTIME - CLOCK_MONOTONIC at start: kernel timestamps + this = wall clock */
  readonly clockOffsetNs: bigint;
  private native: NativeCapture;
  private feeder?: IdentityFeeder;
  private reader?: MessageReader;
  private toFd = false;
  private ended?: Promise<void>;
  private startNs = 0n;
  private unwatch?: () => void;

  private constructor(native: NativeCapture, offset: bigint) {
    this.native = native;
    this.strategy = native.strategy;
    this.attempts = native.attempts;
    this.timings = native.timings;
    this.clockOffsetNs = offset;
  }

  static open(o: CaptureOptions): UnixCapture {
    const mod = loadEngine();
    refuseDebugger(); // the probes load next, with capabilities
    try {
      const native = new mod.Capture({
        ...o.filter,
        strategy: o.strategy,
        ringBytes: o.ringBytes,
        snaplen: o.snaplen,
        payload: o.payload ? 1 : 0,
        selfTgid: process.pid,
        libbpfLogFd: o.libbpfLogFd,
        ownUidOn: o.ownUid === undefined ? 0 : 1,
        ownUid: o.ownUid ?? 0,
      });
      return new UnixCapture(native, mod.clockOffsetNs());
    } catch (e) {
      const attempts = (e as { attempts?: NativeAttempt[] }).attempts;
      throw explainOpenError(e, attempts, o.strategy);
    }
  }

  /** Wall-clock nanoseconds of a kernel timestamp. */
  wallNs(monoNs: bigint): bigint {
    return monoNs + this.clockOffsetNs;
  }

  /**
   * Starts delivery of whole messages to JavaScript (readable dumps): the
   * addon's writer makes the same blocks as for a file, in memory, and they
   * are read back here. onFailure is called if the ring buffer can no longer
   * be read (the capture then has ended by itself).
   */
  start(onMessage: (m: UnixMessage) => void, onFailure: (e: Error) => void, flushMs = 50): void {
    const reader = new MessageReader(onMessage);
    this.reader = reader;
    this.run((batch) => reader.push(batch), onFailure, flushMs);
  }

  /**
   * Starts delivery straight into a pcapng stream on fd, after the section and
   * interface blocks already there: the addon's worker thread writes the packet
   * blocks (the hot path never enters JavaScript). `what` names fd in errors.
   */
  startToFd(fd: number, what: string, limit: number | undefined, onFailure: (e: Error) => void, flushMs = 100): void {
    this.toFd = true;
    this.run(() => {}, onFailure, flushMs, { fd, clockOffset: this.clockOffsetNs, limit }, what);
  }

  private run(onBatch: (b: Buffer) => void, onFailure: (e: Error) => void, flushMs: number, output?: Parameters<NativeCapture['start']>[3], what = '') {
    this.startNs = BigInt(Date.now()) * 1_000_000n;
    // container names for the writer's records (file or dump alike), found beside the capture (src/identity.ts)
    const resolver = new IdentityResolver({ names: new ContainerNames(runtimeSockets(process.env, privileged())) });
    this.feeder = new IdentityFeeder(resolver, this.native);
    this.feeder.start();
    this.ended = new Promise((resolve) => {
      this.native.start(
        onBatch,
        (r: NativeEnd) => {
          if (r.pollError) onFailure(new CaptureError(`reading the kernel ring buffer failed (errno ${-r.pollError}): the capture stops here`));
          if (r.writeError) onFailure(nativeWriteError(what, r.writeError));
          resolve();
        },
        flushMs,
        output,
      );
    });
  }

  /** How the addon's writer thread is scheduled (undefined before a start). */
  writerScheduling(): WriterScheduling | undefined {
    return this.native.writerScheduling();
  }

  /**
   * Calls onNote with what happened when the kernel says (SIGXCPU) that the
   * real-time writer used RLIMIT_RTTIME of CPU without sleeping: it is put
   * back to normal scheduling (native/writer_sched.h). Until stop().
   */
  watchWriter(onNote: (note: string) => void): void {
    const onXcpu = () => {
      const what = this.native.demoteWriter();
      if (what) onNote(`writer thread ran without sleeping for the real-time limit: ${what}`);
    };
    process.on('SIGXCPU', onXcpu);
    this.unwatch = () => process.off('SIGXCPU', onXcpu);
  }

  /** Sends handed over so far (written to the file, or to JavaScript). */
  messages(): number {
    return this.toFd ? (this.native.stats().messages ?? 0) : (this.reader?.messages ?? 0);
  }

  stats(): NativeStats {
    return this.native.stats();
  }

  /** Stops the probes' delivery, waits for the last batch, then detaches everything. */
  async stop(): Promise<CaptureSummary> {
    await this.feeder?.finish();
    this.native.stop();
    if (this.ended) await this.ended;
    const stats = this.native.stats();
    this.native.close();
    this.unwatch?.();
    // the addon's writer joined the records, whether it wrote a file or the dump's batches
    const assembler = {
      messages: stats.messages ?? 0,
      incomplete: stats.incomplete ?? 0,
      orphanRecords: stats.orphanRecords ?? 0,
      badRecords: stats.badRecords ?? 0,
    };
    return {
      ...stats,
      strategy: this.strategy,
      dropped: stats.lostMessages + assembler.incomplete,
      assembler,
      packets: stats.packets ?? 0,
      startNs: this.startNs,
      endNs: BigInt(Date.now()) * 1_000_000n,
    };
  }
}

/** The addon writer's errno as the same sentence the TypeScript writer gives. */
function nativeWriteError(what: string, errno: number) {
  const [code, text] = getSystemErrorMap().get(-errno) ?? ['EIO', 'i/o error'];
  return writeError(what, code, `${code}: ${text}`);
}
