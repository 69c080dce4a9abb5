// What the kernel in front of the test must do, predicted without the
// capture's own loader: test/kernels/strategies.json says which hooks each
// attach strategy needs and in which order `auto` tries them; build/kfeatures
// (test/kernels/kfeatures.c) reads the running kernel's BTF and tracefs and
// tries a minimal fexit/tp_btf load and a kprobe/tracepoint perf event for
// each hook. The same prediction judges the host and every qemu guest.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
export const KFEATURES = path.join(ROOT, 'build', 'kfeatures');

interface StrategyFacts {
  number: number;
  hooks: string[];
}
interface Facts {
  order: string[];
  strategies: Record<string, StrategyFacts>;
  refusal: Record<string, string>;
}

export const FACTS = JSON.parse(fs.readFileSync(path.join(ROOT, 'test', 'kernels', 'strategies.json'), 'utf8')) as Facts;
export type Strategy = 'fentry' | 'kprobe' | 'sock_send_length' | 'syscalls';
export const STRATEGIES = FACTS.order as Strategy[];
/** the number each record carries for the strategy that made it */
export const STRATEGY_NUMBER = Object.fromEntries(STRATEGIES.map((s) => [s, FACTS.strategies[s].number])) as Record<Strategy, number>;
/** every hook of every strategy: kfeatures' arguments */
export const HOOKS = [...new Set(STRATEGIES.flatMap((s) => FACTS.strategies[s].hooks))];

/** System call numbers of the send calls sockgen makes. */
export interface SyscallNumbers {
  write: number;
  writev: number;
  sendto: number;
  sendmsg: number;
  sendmmsg: number;
  sendfile: number;
}

/**
 * The numbers the records carry: x86_64's on every architecture
 * (docs/link-header.md), the REC_* of bpf/syscalls.h, to which the probe maps
 * its architecture's own numbers (the ones kfeatures prints).
 */
export const RECORD_SYSCALLS: SyscallNumbers = (() => {
  const src = fs.readFileSync(path.join(ROOT, 'bpf', 'syscalls.h'), 'utf8');
  const n = (name: string) => {
    const m = new RegExp(`^#define REC_${name} (\\d+)$`, 'm').exec(src);
    if (!m) throw new Error(`bpf/syscalls.h defines no REC_${name}`);
    return Number(m[1]);
  };
  return { write: n('write'), writev: n('writev'), sendto: n('sendto'), sendmsg: n('sendmsg'), sendmmsg: n('sendmmsg'), sendfile: n('sendfile') };
})();

/** kfeatures' output. */
export interface KernelReading {
  release: string;
  machine: string;
  btf: boolean;
  /** where tracefs is mounted, "(mountable)" when nowhere but it can be, null when it cannot */
  tracefs: string | null;
  /** this architecture's own numbers (the records carry RECORD_SYSCALLS) */
  syscalls: SyscallNumbers;
  hooks: Record<string, { ok: boolean; why?: string }>;
}

export interface Prediction {
  /** true: the capture must run with it; false: it must be refused */
  allowed: Record<Strategy, boolean>;
  /** for a refused strategy: the first hook kfeatures found unusable, and why */
  missing: Partial<Record<Strategy, { hook: string; why: string; sentence: RegExp }>>;
  /** what --strategy auto must pick (undefined: every strategy must be refused) */
  auto?: Strategy;
}

export function predict(k: KernelReading, opts: { tracefs?: boolean } = {}): Prediction {
  const allowed = {} as Record<Strategy, boolean>;
  const missing: Prediction['missing'] = {};
  for (const s of STRATEGIES) {
    const bad = FACTS.strategies[s].hooks.find((h) => !k.hooks[h]?.ok || (opts.tracefs === false && h.startsWith('tracepoint:')));
    allowed[s] = k.btf && !bad;
    if (bad) {
      const kind = bad.slice(0, bad.indexOf(':'));
      const why = k.hooks[bad]?.ok ? 'tracefs hidden' : (k.hooks[bad]?.why ?? 'not checked');
      missing[s] = { hook: bad, why, sentence: new RegExp(FACTS.refusal[kind]) };
    }
  }
  return { allowed, missing, auto: STRATEGIES.find((s) => allowed[s]) };
}

export function parseReading(json: string): KernelReading {
  return JSON.parse(json) as KernelReading;
}

let cached: KernelReading | undefined;
/** kfeatures run on the kernel this test runs on (once per test process). */
export function readKernel(): KernelReading {
  cached ??= parseReading(execFileSync(KFEATURES, HOOKS, { encoding: 'utf8' }));
  return cached;
}

/** The prediction for the kernel this test runs on. */
export function thisKernel(): Prediction & { reading: KernelReading } {
  const reading = readKernel();
  return { ...predict(reading), reading };
}
