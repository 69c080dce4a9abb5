// The kernel matrix: on Debian 12's 6.1 kernel and the bookworm-backports
// 6.12 kernel (booted under qemu with software emulation, with this machine's
// own root filesystem shared read-only over virtio-9p), on the arm64 builds of
// the same two kernels (qemu-system-aarch64, TCG, running the arm64 executable
// from a self-contained initramfs: make-initramfs.sh --arch arm64) and on the
// host kernel itself:
//  - build/kfeatures reads what the kernel offers each attach strategy (its
//    BTF, tracefs, a trial fexit/tp_btf load, a trial kprobe), independently
//    of the capture's loader; test/helpers/kernel.ts turns that reading and
//    test/kernels/strategies.json into what the capture must accept, refuse
//    and pick with auto;
//  - matrix-cases.sh forces each strategy, and auto, while known traffic flows;
//    every record field is checked here on the host; its identity case puts
//    processes in a cgroup and in pid and net namespaces of their own, and
//    checks the identity fields and the cgroup, pidns and netns filters;
//  - in each x86_64 guest, the host's end-to-end capture tests (GUEST_TESTS)
//    run again with Node's test runner, on the guest's kernel (the arm64
//    guests have no Node userland for them: the matrix is their proof).
// The results print as a table (kernel x strategy, and the guest's e2e
// counts) written to build/kernel-matrix.md.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { GENERATORS, checkAll, traffic, type Generated } from '../helpers/checks';
import { readPcapng } from '../helpers/pcapng-read';
import { CI, ROOT, needBpf, need, records, type Gen } from '../helpers/harness';
import {
  HOOKS,
  KFEATURES,
  RECORD_SYSCALLS,
  STRATEGIES,
  STRATEGY_NUMBER,
  parseReading,
  predict,
  type KernelReading,
  type Prediction,
  type Strategy,
} from '../helpers/kernel';

/**
 * The end-to-end test files that also run inside each guest: those whose
 * result depends on the kernel (they load the BPF programs and check what they
 * capture). The dissector, extcap-protocol and Lua tests check Wireshark's side
 * and the command line, the same on every kernel, and would take minutes more
 * under emulation.
 */
const GUEST_TESTS = ['test/e2e/capture.test.ts'];
/** Boot, the matrix and GUEST_TESTS took 2-4 minutes per guest under TCG; beyond this it hangs. */
const GUEST_TIMEOUT_MS = 900_000;
/** The arm64 guests' boot and matrix took 48-50 s alone, about 150 s beside the x86_64 guests (one emulated CPU each, on 2 vCPUs). */
const ARM64_TIMEOUT_MS = 600_000;
const KDIR = path.join(ROOT, 'test', 'kernels');
const GUESTS_DIR = path.join(ROOT, 'build', 'kernels');
const INITRAMFS = path.join(GUESTS_DIR, 'initramfs.cpio');
const INITRAMFS_ARM64 = path.join(GUESTS_DIR, 'initramfs-arm64.cpio');
const CASES = [...STRATEGIES, 'auto'] as const;

interface Kernel {
  name: string;
  arch: 'x86_64' | 'arm64';
  vmlinuz?: string;
  release?: string;
  dir?: string;
}

/** The emulator each architecture's guests need. */
const QEMU = { x86_64: 'qemu-system-x86_64', arm64: 'qemu-system-aarch64' } as const;

/** What the guest printed about one case (see test/kernels/guest-init.sh). */
interface CaseOut {
  name: string;
  gens: string[];
  rc?: number;
  stderr: string;
  pcap?: Buffer;
  /** how long the case took in the guest */
  secs?: number;
  ended: boolean;
}

interface Run {
  release: string;
  cases: Map<string, CaseOut>;
  /** why the whole kernel failed (boot, timeout), if it did */
  problem?: string;
  seconds: number;
  /** kfeatures on that kernel */
  reading?: KernelReading;
  /** GUEST_TESTS in the guest (none on the host: npm test runs them there itself) */
  e2e?: E2e;
  /** seconds from boot at each step of guest-run.sh */
  steps?: Record<string, number>;
}

/** Node's TAP summary of GUEST_TESTS in a guest. */
interface E2e {
  tests: number;
  pass: number;
  fail: number;
  other: number;
  /** each failing test: its name and error */
  failures: string[];
}

interface Cell {
  ok: boolean;
  /** nothing to judge (printed as –) */
  none?: boolean;
  text: string;
  /** the whole failure, for the test's message */
  detail?: string;
}

/** The traffic every case makes, for the guest: sockgen runs by commas, their arguments by colons. */
const GENS = Object.entries(GENERATORS)
  .map(([k, args]) => [...args, ...(k === 'dgram' ? [`unixsock-kernels-${process.pid}`] : [])].join(':'))
  .join(',');

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
    else if (tag === 'secs' && cur) cur.secs = Number(rest);
    else if (tag === 'end' && cur) cur.ended = true;
    else if (tag === 'done') done = true;
  }
  return { release, cases, problem: done ? undefined : 'the guest did not finish its cases' };
}

function parseTap(text: string): E2e {
  const n = (k: string) => Number(new RegExp(`^# ${k} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  const failures: string[] = [];
  const lines = text.split('\n');
  lines.forEach((l, i) => {
    // the failing tests themselves (indented: inside their describe), with their error line
    const m = /^\s+not ok \d+ - (.*)$/.exec(l);
    if (!m) return;
    const at = lines.slice(i + 1, i + 12).findIndex((x) => /^\s+error: /.test(x));
    let err = at < 0 ? '' : lines[i + 1 + at].trim().slice(7);
    // a multi-line error (YAML block): its first two non-empty lines
    if (/^[|>]-?$/.test(err))
      err = lines
        .slice(i + 2 + at, i + 12 + at)
        .map((x) => x.trim())
        .filter(Boolean)
        .slice(0, 2)
        .join(' ');
    failures.push(`${m[1]}${err ? `: ${err.slice(0, 200)}` : ''}`);
  });
  return { tests: n('tests'), pass: n('pass'), fail: n('fail'), other: n('cancelled') + n('skipped') + n('todo'), failures };
}

function readIf(file: string): string | undefined {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
}

function bootGuest(k: Kernel): Promise<Run> {
  const start = Date.now();
  const results = path.join(GUESTS_DIR, k.name);
  fs.rmSync(results, { recursive: true, force: true });
  fs.mkdirSync(results, { recursive: true });
  const timeout = k.arch === 'arm64' ? ARM64_TIMEOUT_MS : GUEST_TIMEOUT_MS;
  return new Promise((resolve) => {
    const common = ['-accel', 'tcg', '-smp', '1', '-nographic', '-no-reboot', '-net', 'none', '-kernel', k.vmlinuz!];
    // where guest-run.sh (guest-init-arm64.sh) writes what it found
    const share = ['-virtfs', `local,path=${results},mount_tag=results,security_model=passthrough`];
    const cases = `unixsock_cases=${CASES.join(',')} unixsock_gens=${GENS} unixsock_ident=1`;
    const args =
      k.arch === 'arm64'
        ? [
            // pauth-impdef: the emulated CPU's pointer authentication by a cheap
            // algorithm instead of QARMA (boot to /init in under 2 s instead of 5-7)
            '-machine',
            'virt',
            '-cpu',
            'max,pauth-impdef=on',
            '-m',
            '1536',
            ...common,
            '-initrd',
            INITRAMFS_ARM64,
            ...share,
            '-append',
            `console=ttyAMA0 quiet panic=-1 ${cases}`,
          ]
        : [
            '-m',
            '2048',
            ...common,
            '-initrd',
            INITRAMFS,
            // this machine's root filesystem, read-only (guest-init.sh lays a tmpfs overlay on it)
            '-virtfs',
            'local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap',
            ...share,
            '-append',
            `console=ttyS0 quiet panic=-1 unixsock_root=${ROOT} ${cases} unixsock_tests=${GUEST_TESTS.join(',')}`,
          ];
    const q = spawn(QEMU[k.arch], args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    q.stdout.on('data', (d) => (out += d));
    q.stderr.on('data', (d) => (out += d));
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      q.kill('SIGKILL');
    }, timeout);
    q.on('exit', (code) => {
      clearTimeout(timer);
      const seconds = (Date.now() - start) / 1000;
      fs.writeFileSync(path.join(GUESTS_DIR, `${k.name}.console.log`), out);
      const r: Run = { ...parseConsole(readIf(path.join(results, 'matrix.log')) ?? ''), seconds };
      const problem = /@@problem (.*)/.exec(out)?.[1];
      if (problem) r.problem = problem;
      else if (killed) r.problem = `hung: killed after ${timeout / 1000} s`;
      else if (code !== 0 && !r.problem) r.problem = `qemu exited with ${code}`;
      if (r.problem && !r.release) r.problem += `; console: ${out.replace(/\s+/g, ' ').slice(-300)}`;
      const kf = readIf(path.join(results, 'kfeatures.json'));
      try {
        if (kf) r.reading = parseReading(kf);
      } catch {
        r.problem ??= `kfeatures printed: ${kf?.slice(0, 200)}`;
      }
      const tap = readIf(path.join(results, 'e2e.tap'));
      if (tap) r.e2e = parseTap(tap);
      const times = readIf(path.join(results, 'times'));
      if (times)
        r.steps = Object.fromEntries(
          times
            .trim()
            .split('\n')
            .map((l) => [l.split(' ')[0], Number(l.split(' ')[1])]),
        );
      resolve({ ...r, release: r.release || '?' });
    });
  });
}

function runHost(): Promise<Run> {
  const start = Date.now();
  let reading: KernelReading | undefined;
  let problem: string | undefined;
  try {
    reading = parseReading(execFileSync(KFEATURES, HOOKS, { encoding: 'utf8' }));
  } catch (e) {
    problem = `kfeatures failed: ${firstLine(e)}`;
  }
  return new Promise((resolve) => {
    const p = spawn('sh', [path.join(KDIR, 'matrix-cases.sh'), '--root', ROOT], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, unixsock_cases: CASES.join(','), unixsock_gens: GENS, unixsock_ident: '1' },
    });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), GUEST_TIMEOUT_MS);
    p.on('exit', () => {
      clearTimeout(timer);
      const r = parseConsole(out);
      resolve({ ...r, problem: problem ?? r.problem, reading, seconds: (Date.now() - start) / 1000 });
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
      j = JSON.parse(line) as Gen;
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

/** Checks one case of one kernel against the prediction from that kernel's kfeatures reading; the cell of the table. */
function judge(c: CaseOut | undefined, strategy: Strategy | 'auto', p: Prediction): Cell {
  if (!c) return { ok: false, text: 'not run' };
  if (!c.ended) return { ok: false, text: 'did not finish' };
  const stderr = c.stderr.trim();
  const refuse = strategy === 'auto' ? !p.auto : !p.allowed[strategy];
  if (refuse) {
    const lines = stderr.split('\n');
    const re =
      strategy === 'auto'
        ? /^unixsock: (no attach strategy works on this kernel .+)$/
        : new RegExp(`^unixsock: attach strategy "${strategy}" does not work on this kernel: (.+); use --strategy auto$`);
    const m = re.exec(lines[0]);
    if (c.rc !== 1 || lines.length !== 1 || !m) return { ok: false, text: `should be refused with one sentence, got rc ${c.rc}: ${stderr.slice(0, 160)}` };
    const miss = strategy === 'auto' ? undefined : p.missing[strategy];
    if (miss && !miss.sentence.test(m[1]))
      return { ok: false, text: `refused, but the reason "${m[1]}" does not match what kfeatures found: ${miss.hook}: ${miss.why}` };
    return { ok: true, text: `refused as it must be: "${m[1]}"` };
  }
  const want = strategy === 'auto' ? p.auto! : strategy;
  try {
    assert.equal(c.rc, 0, `exit code ${c.rc}: ${stderr}`);
    assert.ok(stderr.includes(`captured with ${want},`), `expected "captured with ${want}": ${stderr}`);
    assert.ok(c.pcap, 'no capture file');
    const recs = records(readPcapng(c.pcap));
    const g = generated(c);
    checkAll(g, recs, STRATEGY_NUMBER[want], RECORD_SYSCALLS);
    if (strategy === 'auto') return { ok: true, text: `picks ${want} (${c.secs} s)` };
    // counted: this case's own sockgen runs (on the host, other tests' sockgen runs match the filter too)
    const pids = new Set((Object.values(g) as Gen[]).flatMap((x) => [x.pid, x.child]));
    const mine = traffic(recs).filter((r) => pids.has(r.pid));
    const bytes = mine.reduce((n, r) => n + r.payload.length, 0);
    return { ok: true, text: `${mine.length} records, ${bytes} B` };
  } catch (e) {
    return { ok: false, text: firstLine(e), detail: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * matrix-cases.sh's identity case: four stream-pairs (parent write, child
 * reply), the first in the cgroup and in pid and net namespaces of its own,
 * each other one outside exactly one of them; the capture's filter
 * (cgroup, not pidns, not netns) keeps the first only. Its records carry
 * what sockgen read of itself in /proc: the pid namespace, the pid in it
 * (1, and 2 for the child: NSpid one level below the root), the mount
 * namespace and the cgroup id, for the sender and as the peer.
 */
function identCell(run: Run): Cell {
  const c = run.cases.get('ident');
  if (!c) return { ok: false, text: run.problem ?? 'not run' };
  if (!c.ended) return { ok: false, text: 'did not finish' };
  try {
    assert.equal(c.rc, 0, `exit code ${c.rc}: ${c.stderr.trim()}`);
    assert.ok(c.pcap, 'no capture file');
    const gens = c.gens.map((l) => {
      try {
        return JSON.parse(l) as Gen;
      } catch {
        throw new Error(`sockgen failed: ${l}`);
      }
    });
    assert.equal(gens.length, 4, 'four sockgen runs');
    const [inside, outCg, hostNet, hostPid] = gens;
    // where they ran, as /proc showed them: the test's own premises
    assert.ok(inside.cgroup > 1, 'a cgroup of its own (a cgroup2 hierarchy is mounted)');
    assert.deepEqual([outCg.cgroup === inside.cgroup, hostNet.cgroup, hostPid.cgroup], [false, inside.cgroup, inside.cgroup]);
    assert.deepEqual([inside.pid, inside.child], [1, 2], 'pid 1 of its own pid namespace, its child 2');
    assert.notEqual(hostPid.pidns, inside.pidns);
    const recs = traffic(records(readPcapng(c.pcap)).filter((r) => r.sockType !== 0));
    // nothing but the first pair passed the three filters
    assert.deepEqual(recs.map((r) => r.payload.toString()).sort(), [inside.payload, inside.reply].sort(), 'the filters keep only the first pair');
    const hello = recs.find((r) => r.payload.toString() === inside.payload)!;
    const reply = recs.find((r) => r.payload.toString() === inside.reply)!;
    assert.deepEqual(
      [hello.pidns, hello.nspid, hello.mntns, hello.cgroupId],
      [inside.pidns, inside.pid, inside.mntns, BigInt(inside.cgroup)],
      'sender: pid namespace, NSpid, mount namespace, cgroup id',
    );
    assert.notEqual(hello.pid, inside.pid, 'the pid seen from the root namespace');
    assert.deepEqual([reply.pidns, reply.nspid, reply.cgroupId], [inside.pidns, inside.child, BigInt(inside.cgroup)], 'the child');
    assert.deepEqual(
      [reply.peerPid, reply.peerPidns, reply.peerNspid, reply.peerMntns, reply.peerCgroupId],
      [hello.pid, inside.pidns, inside.pid, inside.mntns, BigInt(inside.cgroup)],
      'the peer',
    );
    return { ok: true, text: `NSpid 1 and 2 in pid ns ${inside.pidns}, cgroup ${inside.cgroup}; cgroup, pidns and netns filters (${c.secs} s)` };
  } catch (e) {
    return { ok: false, text: firstLine(e), detail: e instanceof Error ? e.message : String(e) };
  }
}

/** All the cells of one kernel, judged against its own kfeatures reading. */
function cells(run: Run): Cell[] {
  if (run.problem && !run.cases.size) return CASES.map(() => ({ ok: false, text: run.problem! }));
  if (!run.reading) return CASES.map(() => ({ ok: false, text: 'kfeatures did not run' }));
  const p = predict(run.reading);
  return CASES.map((s) => judge(run.cases.get(s), s, p));
}

function e2eCell(k: Kernel, run: Run): Cell {
  if (k.name === 'host') return { ok: true, text: 'run by npm test itself' };
  if (k.arch === 'arm64') return { ok: true, none: true, text: 'not run: no Node userland for arm64 here (the matrix runs the arm64 executable)' };
  const e = run.e2e;
  if (!e) return { ok: false, text: `no results${run.problem ? `: ${run.problem}` : ''}` };
  const ok = e.fail === 0 && e.other === 0 && e.pass > 0 && e.pass === e.tests;
  return { ok, text: `${e.pass}/${e.tests} pass${e.fail ? `, ${e.fail} fail: ${e.failures.join('; ')}` : ''}${e.other ? `, ${e.other} not run` : ''}` };
}

function table(kernels: Kernel[], results: Map<string, Run>): string[] {
  const head = [
    'kernel',
    ...CASES,
    'identity (namespaces, cgroup, their filters)',
    `e2e tests in the guest (${GUEST_TESTS.map((f) => path.basename(f)).join(', ')})`,
  ];
  const rows = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const k of kernels) {
    const run = results.get(k.name)!;
    const all = [...cells(run), identCell(run), e2eCell(k, run)].map((c) => `${c.none ? '–' : c.ok ? '✓' : '✗'} ${c.text.replace(/\|/g, '\\|')}`);
    const who = k.name === 'host' ? `this machine, ${run.release}` : `${k.name} ${run.release}`;
    rows.push(`| ${who} (${run.seconds.toFixed(0)} s) | ${all.join(' | ')} |`);
  }
  return rows;
}

describe('kernel matrix (qemu: Debian 6.1 and 6.12 on x86_64 and arm64, and the host kernel)', () => {
  const results = new Map<string, Run>();
  const host: Kernel = { name: 'host', arch: 'x86_64' };
  // the guests' names come from fetch-kernels.sh (debian-6.1, debian-6.12; --arch arm64: with -arm64)
  const kernels: Kernel[] = [
    { name: 'debian-6.1', arch: 'x86_64' },
    { name: 'debian-6.12', arch: 'x86_64' },
    { name: 'debian-6.1-arm64', arch: 'arm64' },
    { name: 'debian-6.12-arm64', arch: 'arm64' },
    host,
  ];
  const guests = kernels.filter((k) => k !== host);
  /** why an architecture's guests could not be set up */
  const setup: Partial<Record<Kernel['arch'], string>> = {};

  /** Fetches the kernels of one architecture and makes their initramfs; an error's text lands in `setup`. */
  function prepare(arch: Kernel['arch']): void {
    const sh = (args: string[]) => execFileSync('bash', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const mine = guests.filter((k) => k.arch === arch);
    try {
      // the arm64 build (make NODE_ARCH=arm64; incremental: about a second when it is up to date)
      if (arch === 'arm64') execFileSync('make', ['-s', '-j2', 'NODE_ARCH=arm64'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let busybox: string | undefined;
      for (const l of sh([path.join(KDIR, 'fetch-kernels.sh'), ...(arch === 'arm64' ? ['--arch', 'arm64'] : [])])
        .trim()
        .split('\n')) {
        const [name, release, file] = l.split(' ');
        if (name === 'busybox') busybox = file;
        const k = mine.find((x) => x.name === name);
        if (k) Object.assign(k, { vmlinuz: file, release, dir: path.dirname(file) });
      }
      const missing = mine.filter((k) => !k.vmlinuz).map((k) => k.name);
      if (missing.length) throw new Error(`fetch-kernels.sh gave no ${missing.join(', ')}`);
      const dirs = mine.map((k) => k.dir!);
      if (arch === 'x86_64') sh([path.join(KDIR, 'make-initramfs.sh'), INITRAMFS, ...dirs]);
      else if (busybox) sh([path.join(KDIR, 'make-initramfs.sh'), '--arch', 'arm64', busybox, INITRAMFS_ARM64, ...dirs]);
      else throw new Error('fetch-kernels.sh --arch arm64 gave no busybox');
    } catch (e) {
      const x = e as { stderr?: Buffer | string };
      setup[arch] = x.stderr?.toString().trim() || firstLine(e);
    }
  }

  before(async () => {
    const hostRun = runHost().then((r) => results.set(host.name, r));
    prepare('x86_64');
    prepare('arm64');
    // every guest at once: each is one emulated CPU
    await Promise.all(guests.filter((k) => !setup[k.arch]).map(async (k) => results.set(k.name, await bootGuest(k))));
    await hostRun;
  });

  for (const k of kernels) {
    it(`${k.name}: every strategy its kernel allows captures every field, the others are refused with one sentence, auto picks the first allowed; the identity reads and their filters`, (t) => {
      if (!needBpf(t)) return;
      if (k !== host) {
        if (!need(t, QEMU[k.arch], 'cpio', ...(k.arch === 'arm64' ? ['qemu-aarch64', 'aarch64-linux-gnu-gcc'] : ['busybox']))) return;
        assert.equal(setup[k.arch], undefined, `setting up the ${k.arch} guests failed: ${setup[k.arch]}`);
      }
      const run = results.get(k.name)!;
      const bad: string[] = [];
      cells(run).forEach((cell, i) => {
        if (!cell.ok) bad.push(`${CASES[i]}: ${cell.detail ?? cell.text}`);
      });
      const ident = identCell(run);
      if (!ident.ok) bad.push(`identity: ${ident.detail ?? ident.text}`);
      if (run.problem) bad.unshift(run.problem);
      if (bad.length) assert.fail(`${k.name} ${run.release}:\n${bad.join('\n')}`);
    });
  }

  for (const k of guests.filter((g) => g.arch === 'x86_64')) {
    it(`${k.name}: the host's end-to-end capture tests pass inside the guest (${GUEST_TESTS.join(', ')})`, (t) => {
      if (!needBpf(t) || !need(t, 'qemu-system-x86_64', 'busybox', 'cpio')) return;
      assert.equal(setup.x86_64, undefined, `setting up the guests failed: ${setup.x86_64}`);
      const run = results.get(k.name)!;
      const cell = e2eCell(k, run);
      if (run.steps)
        t.diagnostic(
          `${k.name}: seconds from boot: ${Object.entries(run.steps)
            .map(([s, v]) => `${s} ${v.toFixed(0)}`)
            .join(', ')}`,
        );
      assert.ok(cell.ok, `${k.name} ${run.release}: ${cell.text}`);
    });
  }

  it('prints the table', (t) => {
    if (results.size < kernels.length) {
      const why = Object.values(setup).join('; ') || 'not every kernel ran';
      if (CI) assert.fail(`not every kernel ran: ${why}`);
      t.skip(why);
      return;
    }
    const rows = table(kernels, results);
    fs.writeFileSync(path.join(ROOT, 'build', 'kernel-matrix.md'), rows.join('\n') + '\n');
    for (const r of rows) t.diagnostic(r);
  });
});
