// The kernel matrix: the built executable, forced to each attach strategy,
// captures the same known traffic on Debian 12's 6.1 kernel and the
// bookworm-backports 6.12 kernel (booted under qemu with software emulation,
// from an initramfs) and on the host kernel itself. Every record field is
// checked on the host from the pcapng each guest printed on its console; the
// results print as a table (kernel x strategy) and are written to
// build/kernel-matrix.md.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { GENERATORS, checkAll, traffic, type Generated } from '../helpers/checks';
import { readPcapng } from '../helpers/pcapng-read';
import { CI, EXE, ROOT, SOCKGEN, needBpf, need, records, type Gen } from '../helpers/harness';

const STRATEGIES = ['fentry', 'kprobe', 'sock_send_length', 'syscalls'] as const;
type Strategy = (typeof STRATEGIES)[number];
const NUMBER: Record<Strategy, number> = { fentry: 1, kprobe: 2, sock_send_length: 3, syscalls: 4 };
const GUEST_TIMEOUT_MS = 240_000;
const KDIR = path.join(ROOT, 'test', 'kernels');
const INITRAMFS = path.join(ROOT, 'build', 'kernels', 'initramfs.cpio');

interface Kernel {
  name: string;
  /** which strategies this kernel must run (true) or refuse (false) */
  expect: Record<Strategy, boolean>;
  /** what --strategy auto must pick */
  best: Strategy;
  vmlinuz?: string;
  release?: string;
}

const KERNELS: Kernel[] = [
  { name: 'debian-6.1', expect: { fentry: true, kprobe: true, sock_send_length: false, syscalls: true }, best: 'fentry' },
  { name: 'debian-6.12', expect: { fentry: true, kprobe: true, sock_send_length: true, syscalls: true }, best: 'fentry' },
  { name: 'host', expect: { fentry: false, kprobe: false, sock_send_length: true, syscalls: true }, best: 'sock_send_length' },
];

/** What the guest printed about one case (see test/kernels/guest-init.sh). */
interface CaseOut {
  name: string;
  gens: string[];
  rc?: number;
  stderr: string;
  pcap?: Buffer;
  ended: boolean;
}

interface Run {
  release: string;
  cases: Map<string, CaseOut>;
  /** why the whole kernel failed (boot, timeout), if it did */
  problem?: string;
  seconds: number;
}

interface Cell {
  ok: boolean;
  text: string;
  /** the whole failure, for the test's message */
  detail?: string;
}

/** The guest's name of a case: the strategy, `!strategy` when it must be refused, or auto. */
function caseName(k: Kernel, s: Strategy | 'auto'): string {
  return s === 'auto' || k.expect[s] ? s : `!${s}`;
}

/** The traffic every case makes, for the guest: sockgen runs by commas, their arguments by colons. */
const GENS = Object.entries(GENERATORS)
  .map(([k, args]) => [...args, ...(k === 'dgram' ? [`unixsock-kernels-${process.pid}`] : [])].join(':'))
  .join(',');

function casesFor(k: Kernel): string[] {
  return [...STRATEGIES, 'auto' as const].map((s) => caseName(k, s));
}

function parseConsole(text: string): Omit<Run, 'seconds'> {
  const cases = new Map<string, CaseOut>();
  let release = '';
  let cur: CaseOut | undefined;
  let pcap: string[] | undefined;
  let done = false;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (pcap) {
      if (line === '@@pcap-end') {
        cur!.pcap = Buffer.from(pcap.join(''), 'base64');
        pcap = undefined;
      } else if (/^[A-Za-z0-9+/=]+$/.test(line)) pcap.push(line);
      continue;
    }
    // the console may put terminal escapes before a marker
    const m = /@@(\S+)(?: (.*))?$/.exec(line);
    if (!m) continue;
    const [, tag, rest = ''] = m;
    if (tag === 'kernel') release = rest;
    else if (tag === 'case') cases.set(rest, (cur = { name: rest, gens: [], stderr: '', ended: false }));
    else if (tag === 'gen' && cur) cur.gens.push(rest);
    else if (tag === 'rc' && cur) cur.rc = Number(rest);
    else if (tag === 'stderr' && cur) cur.stderr = Buffer.from(rest, 'base64').toString();
    else if (tag === 'pcap' && cur) pcap = [];
    else if (tag === 'end' && cur) cur.ended = true;
    else if (tag === 'done') done = true;
  }
  return { release, cases, problem: done ? undefined : 'the guest did not finish its cases' };
}

function bootGuest(k: Kernel): Promise<Run> {
  const start = Date.now();
  return new Promise((resolve) => {
    const args = [
      '-accel', 'tcg', '-m', '1536', '-smp', '1', '-nographic', '-no-reboot', '-net', 'none',
      '-kernel', k.vmlinuz!, '-initrd', INITRAMFS,
      '-append', `console=ttyS0 quiet panic=-1 unixsock_cases=${casesFor(k).join(',')} unixsock_gens=${GENS}`,
    ];
    const q = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    q.stdout.on('data', (d) => (out += d));
    q.stderr.on('data', (d) => (out += d));
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      q.kill('SIGKILL');
    }, GUEST_TIMEOUT_MS);
    q.on('exit', (code) => {
      clearTimeout(timer);
      const r = parseConsole(out);
      const seconds = (Date.now() - start) / 1000;
      fs.writeFileSync(path.join(ROOT, 'build', 'kernels', `${k.name}.console.log`), out);
      if (killed) r.problem = `hung: killed after ${GUEST_TIMEOUT_MS / 1000} s`;
      else if (code !== 0 && !r.problem) r.problem = `qemu exited with ${code}`;
      if (r.problem && !r.release) r.problem += `; console: ${out.replace(/\s+/g, ' ').slice(-300)}`;
      resolve({ ...r, release: r.release || '?', seconds });
    });
  });
}

function runHost(k: Kernel): Promise<Run> {
  const start = Date.now();
  return new Promise((resolve) => {
    const p = spawn('sh', [path.join(KDIR, 'guest-init.sh'), '--host', ROOT], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, unixsock_cases: casesFor(k).join(','), unixsock_gens: GENS },
    });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), GUEST_TIMEOUT_MS);
    p.on('exit', () => {
      clearTimeout(timer);
      const r = parseConsole(out);
      resolve({ ...r, release: os.release(), seconds: (Date.now() - start) / 1000 });
    });
  });
}

/** sockgen's mode (first argument, echoed in its report) -> the key of Generated */
const KEYS = Object.fromEntries(Object.entries(GENERATORS).map(([k, args]) => [args[0], k])) as Record<string, keyof Generated>;

function generated(c: CaseOut): Generated {
  const g: Partial<Generated> = {};
  for (const line of c.gens) {
    let j: Gen;
    try {
      j = JSON.parse(line);
    } catch {
      throw new Error(`sockgen failed: ${line}`);
    }
    g[KEYS[j.mode]] = j;
  }
  for (const k of Object.values(KEYS)) if (!g[k]) throw new Error(`sockgen ${k} did not run`);
  return g as Generated;
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0].slice(0, 160);
}

/** Checks one case of one kernel; the cell of the table. */
function judge(c: CaseOut | undefined, strategy: Strategy | 'auto', k: Kernel): Cell {
  if (!c) return { ok: false, text: 'not run' };
  if (!c.ended) return { ok: false, text: 'did not finish' };
  const stderr = c.stderr.trim();
  if (strategy !== 'auto' && !k.expect[strategy]) {
    const lines = stderr.split('\n');
    const re = new RegExp(`^unixsock: attach strategy "${strategy}" does not work on this kernel: (.+); use --strategy auto$`);
    const m = re.exec(lines[0]);
    if (c.rc === 1 && lines.length === 1 && m) return { ok: true, text: `refused: ${m[1]}` };
    return { ok: false, text: `should be refused with one sentence, got rc ${c.rc}: ${stderr.slice(0, 120)}` };
  }
  const want = strategy === 'auto' ? k.best : strategy;
  try {
    assert.equal(c.rc, 0, `exit code ${c.rc}: ${stderr}`);
    assert.ok(stderr.includes(`captured with ${want},`), `expected "captured with ${want}": ${stderr}`);
    assert.ok(c.pcap, 'no capture file');
    const recs = records(readPcapng(c.pcap));
    checkAll(generated(c), recs, NUMBER[want]);
    const mine = traffic(recs);
    const bytes = mine.reduce((n, r) => n + r.payload.length, 0);
    return { ok: true, text: `${strategy === 'auto' ? `${want}: ` : ''}${mine.length} records, ${bytes} B` };
  } catch (e) {
    return { ok: false, text: firstLine(e), detail: e instanceof Error ? e.message : String(e) };
  }
}

function table(results: Map<string, Run>): string[] {
  const head = ['kernel', ...STRATEGIES, 'auto'];
  const rows = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const k of KERNELS) {
    const run = results.get(k.name)!;
    const cells = [...STRATEGIES, 'auto' as const].map((s) => {
      if (run.problem && !run.cases.size) return `✗ ${run.problem}`;
      const cell = judge(run.cases.get(caseName(k, s)), s, k);
      return `${cell.ok ? '✓' : '✗'} ${cell.text}`;
    });
    rows.push(`| ${k.name} ${run.release} (${run.seconds.toFixed(0)} s) | ${cells.join(' | ')} |`);
  }
  return rows;
}

describe('kernel matrix (qemu: Debian 6.1 and 6.12, and the host kernel)', () => {
  const results = new Map<string, Run>();
  let setup: string | undefined;

  before(async () => {
    const host = KERNELS.find((k) => k.name === 'host')!;
    const guests = KERNELS.filter((k) => k !== host);
    const hostRun = runHost(host).then((r) => results.set(host.name, r));
    try {
      const lines = execFileSync('bash', [path.join(KDIR, 'fetch-kernels.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
        .trim()
        .split('\n');
      for (const l of lines) {
        const [name, release, vmlinuz] = l.split(' ');
        const k = guests.find((x) => x.name === name);
        if (k) Object.assign(k, { vmlinuz, release });
      }
      execFileSync('bash', [path.join(KDIR, 'make-initramfs.sh'), INITRAMFS, EXE, SOCKGEN], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      const x = e as { stderr?: Buffer };
      setup = x.stderr?.toString().trim() || firstLine(e);
    }
    if (!setup) await Promise.all(guests.map(async (k) => results.set(k.name, await bootGuest(k))));
    await hostRun;
  });

  for (const k of KERNELS) {
    it(`${k.name}: every strategy it allows captures every field; the others are refused with one sentence`, (t) => {
      if (!needBpf(t)) return;
      if (k.name !== 'host') {
        if (!need(t, 'qemu-system-x86_64', 'busybox', 'cpio')) return;
        assert.equal(setup, undefined, `setting up the guests failed: ${setup}`);
      }
      const run = results.get(k.name)!;
      const bad: string[] = [];
      for (const s of [...STRATEGIES, 'auto' as const]) {
        const cell = judge(run.cases.get(caseName(k, s)), s, k);
        if (!cell.ok) bad.push(`${s}: ${cell.detail ?? cell.text}`);
      }
      if (run.problem) bad.unshift(run.problem);
      if (bad.length) assert.fail(`${k.name} ${run.release}:\n${bad.join('\n')}`);
    });
  }

  it('prints the table', (t) => {
    if (results.size < KERNELS.length) {
      if (CI) assert.fail(`not every kernel ran: ${setup ?? ''}`);
      t.skip(setup ?? 'not every kernel ran');
      return;
    }
    const rows = table(results);
    fs.writeFileSync(path.join(ROOT, 'build', 'kernel-matrix.md'), rows.join('\n') + '\n');
    for (const r of rows) t.diagnostic(r);
  });
});
