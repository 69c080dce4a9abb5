// The one module that loads the native addon (build/unixsock.node, or the
// copy embedded in the single executable) and declares its interface.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { installedAddon, privileged } from './privilege';
import { DATA, LINK_HEADER, MSG, type UnixsockFilter } from './generated/vocab';

export interface NativeAttempt {
  strategy: string;
  ok: boolean;
  error?: string;
  note?: string;
}

export interface NativeStats {
  sends: number;
  bytes: number;
  capturedBytes: number;
  lostMessages: number;
  lostFragments: number;
  lostBytes: number;
  readErrors: number;
}

/** The addon's own pcapng writer's counters (when it writes the capture). */
export interface WriterStats {
  /** sends written (whole, or flagged as having lost bytes) */
  messages: number;
  /** enhanced packet blocks (a send longer than one record takes several) */
  packets: number;
  /** sends whose payload or ancillary records the ring lost */
  incomplete: number;
  orphanRecords: number;
  badRecords: number;
  /** the most bytes the writer saw in use in the kernel ring (after a stall: what piled up meanwhile), and the ring's size */
  ringPeak: number;
  ringSize: number;
}

/** Where the addon writes pcapng packet blocks itself. */
export interface NativeOutput {
  fd: number;
  /** CLOCK_REALTIME - CLOCK_MONOTONIC, ns */
  clockOffset: bigint;
  /** stop writing after this many sends (0 or absent: no limit) */
  limit?: number;
}

export interface NativeEnd {
  /** ring buffer poll failure (negative errno), 0 if none */
  pollError: number;
  /** errno of the output write that failed, 0 if none */
  writeError: number;
}

/**
 * What new Capture() takes: the probes' settings and filters (struct
 * unixsock_filter of bpf/unixsock.h, field by field; absent fields are 0,
 * selfTgid 0 is this process, wakeupBytes 0 lets the addon pick) and the loader's.
 */
export interface NativeOptions extends Partial<UnixsockFilter> {
  /** a strategy name (STRATEGY_NAMES), or auto */
  strategy?: string;
  ringBytes?: number;
  /** an open file for libbpf's output (the addon opens no path itself) */
  libbpfLogFd?: number;
}

/** A struct's size and each field's offset and size in bytes. */
export interface StructLayout {
  size: number;
  off: Record<string, number>;
  len: Record<string, number>;
}

/** How the addon's writer thread is scheduled (native/writer_sched.h). */
export interface WriterScheduling {
  policy: 'SCHED_FIFO' | 'SCHED_OTHER';
  /** the real-time priority (SCHED_FIFO), else 0 */
  priority: number;
  /** the nice value (SCHED_OTHER) */
  nice: number;
  /** the thread's id (/proc/PID/task/TID) */
  tid: number;
  /** for the log, with why a higher priority was refused */
  text: string;
}

export interface NativeCapture {
  readonly strategy: string;
  readonly attempts: NativeAttempt[];
  /** milliseconds of each phase of the load, e.g. "tracefs 0, open 3, btf 2, probe 1, ring wait 0, load 58, attach 1, ring 7" */
  readonly timings: string;
  start(onBatch: (batch: Buffer) => void, onEnd: (r: NativeEnd) => void, flushMs?: number, output?: NativeOutput): void;
  stop(): void;
  stats(): NativeStats & Partial<WriterStats>;
  close(): void;
  /** what the pcapng writer puts in records of this cgroup (containerId '': a host cgroup), and how it names the cgroup's stream-view address (path: the cgroup's path) */
  setIdentity(cgroupId: bigint, containerId: string, name: string, path?: string): void;
  /** cgroup ids the writer met that setIdentity has not answered (each once) */
  unknownCgroups(): bigint[];
  /** how the writer thread is scheduled (undefined before start) */
  writerScheduling(): WriterScheduling | undefined;
  /** the writer back to normal scheduling (on SIGXCPU); what to log, '' if nothing changed */
  demoteWriter(): string;
}

export interface NativeModule {
  Capture: new (opts: NativeOptions) => NativeCapture;
  clockOffsetNs(): bigint;
  /** the record structs of bpf/unixsock.h as the addon's compiler laid them out (shaped like src/generated/vocab.ts) */
  layout(): Record<string, StructLayout>;
  /** a pipe or fifo whose reader has gone (a write would fail with EPIPE) */
  readerGone(fd: number): boolean;
  /** the capture's pcapng writer run on records in the batch format (tests, benchmarks) */
  writeRecords(
    fd: number,
    batch: Buffer,
    clockOffset: bigint,
    identities?: { cgroupId: bigint; id: string; name: string; path?: string }[],
  ): WriterStats & { writeError: number };
}

let loaded: NativeModule | undefined;

function fromSea(): NativeModule | undefined {
  let sea: { isSea(): boolean; getAsset(name: string): ArrayBuffer };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- node:sea came in Node 20.12: older ones throw here
    sea = require('node:sea') as typeof sea;
  } catch {
    return undefined;
  }
  if (!sea.isSea()) return undefined;
  const asset = sea.getAsset('unixsock.node');
  const mod = { exports: {} as NativeModule };
  if (privileged()) {
    // A member's capture: the process runs with the member's uid, so anything
    // it wrote (a temp folder, an extracted library) the member could swap
    // before dlopen. Only the root-owned copy beside the executable is loaded.
    const inst = installedAddon(asset);
    try {
      process.dlopen(mod, inst.file);
    } finally {
      inst.close();
    }
    return mod.exports;
  }
  // root, or a user install without capabilities: nothing to steal, but the
  // folder is private (0700) and the file is made by this process alone
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unixsock-'));
  const file = path.join(dir, 'unixsock.node');
  try {
    const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o500);
    try {
      fs.writeFileSync(fd, Buffer.from(asset));
    } finally {
      fs.closeSync(fd);
    }
    process.dlopen(mod, file);
    return mod.exports;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function loadNative(): NativeModule {
  if (loaded) return loaded;
  let mod = fromSea();
  if (!mod) {
    // development runs (tsx, the bundle under node): never with privileges from a file
    const file = (!privileged() && process.env.UNIXSOCK_ADDON) || path.resolve(__dirname, '..', 'build', 'unixsock.node');
    const m = { exports: {} as NativeModule };
    process.dlopen(m, file);
    mod = m.exports;
  }
  // the addon and this bundle were built from the same bpf/unixsock.h
  const layout = mod.layout();
  for (const [name, want] of Object.entries({ MSG, DATA, LINK_HEADER })) {
    if (JSON.stringify(layout[name]) !== JSON.stringify(want))
      throw new Error(`native addon record layout of ${name} (${JSON.stringify(layout[name])}) does not match src/generated/vocab.ts`);
  }
  loaded = mod;
  return mod;
}
