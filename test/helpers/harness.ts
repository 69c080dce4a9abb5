// Shared pieces of the end-to-end tests: the built executable, real traffic
// generators, captures to temporary files, and tshark with our dissector.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { decodeLinkHeader, type DecodedHeader } from '../../src/link-header';
import { readPcapng, type Capture } from './pcapng-read';

export const ROOT = path.resolve(__dirname, '..', '..');
export const EXE = path.join(ROOT, 'extcap', 'unixsock');
export const SOCKGEN = path.join(ROOT, 'build', 'sockgen');
export const LUA = path.join(ROOT, 'wireshark', 'unixsock.lua');
export const CI = process.env.CI === 'true';
/**
 * How much slower than this machine the tests run: 1 here; the qemu guests of
 * the kernel matrix (software emulation, two guests sharing two CPUs) set
 * UNIXSOCK_TEST_SLOWDOWN, since loading and attaching the probes there took
 * 15-20 s where it takes 0.3 s here. Timeouts, not expectations, scale with it.
 */
export const SLOWDOWN = Math.max(1, Number(process.env.UNIXSOCK_TEST_SLOWDOWN) || 1);

/** Why this machine cannot run BPF capture tests, or undefined if it can. */
function bpfProblem(): string | undefined {
  if (process.geteuid?.() !== 0) return 'not running as root (the capture tests load eBPF programs)';
  if (!fs.existsSync('/sys/kernel/btf/vmlinux')) return 'the kernel has no BTF';
  if (!fs.existsSync(EXE)) return 'extcap/unixsock is not built (npm run build)';
  return undefined;
}

/**
 * Call first in every test that needs BPF: under CI it fails when BPF is not
 * available; elsewhere it skips with the reason. Returns false when skipped.
 */
export function needBpf(t: TestContext): boolean {
  const why = bpfProblem();
  if (!why) return true;
  if (CI) throw new Error(`cannot run capture tests under CI: ${why}`);
  t.skip(why);
  return false;
}

export function need(t: TestContext, ...programs: string[]): boolean {
  for (const p of programs) {
    if (spawnSync('sh', ['-c', `command -v ${p}`]).status !== 0) {
      if (CI) throw new Error(`${p} is not installed (scripts/deps.sh installs it)`);
      t.skip(`${p} is not installed`);
      return false;
    }
  }
  return true;
}

export function tmpdir(t: TestContext): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'unixsock-test-'));
  fs.chmodSync(d, 0o755);
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A copy of the executable another user can run: the clone may sit where only
 * its owner can reach (a root's clone under /root, mode 0700). */
export function exeForOtherUsers(t: TestContext): string {
  const exe = path.join(tmpdir(t), 'unixsock');
  fs.copyFileSync(EXE, exe);
  fs.chmodSync(exe, 0o755);
  return exe;
}

export interface Running {
  file: string;
  proc: ChildProcess;
  stderr: () => string;
  /** SIGTERM, then wait; returns exit code and stderr */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; stderr: string }>;
}

/** Starts `unixsock -w FILE ARGS...` and waits until its probes are attached. */
export async function startCapture(t: TestContext, args: string[], file?: string, env?: NodeJS.ProcessEnv): Promise<Running> {
  const out = file ?? path.join(tmpdir(t), 'cap.pcapng');
  const proc = spawn(EXE, ['-w', out, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: env ? { ...process.env, ...env } : process.env });
  let err = '';
  proc.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  t.after(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
  });
  const deadline = Date.now() + 15000 * SLOWDOWN;
  while (!err.includes('capturing')) {
    if (proc.exitCode !== null) throw new Error(`capture exited early (${proc.exitCode}): ${err}`);
    if (Date.now() > deadline) throw new Error(`capture did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    file: out,
    proc,
    stderr: () => err,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null) proc.kill(signal);
      const code = await exited;
      return { code, stderr: err };
    },
  };
}

/** What test/helpers/sockgen printed about the traffic it made. */
export interface Gen {
  mode: string;
  pid: number;
  uid: number;
  gid: number;
  ino: number;
  peerIno: number;
  child: number;
  payload: string;
  reply: string;
  name: string;
  len: number;
  count: number;
  /** the sender's pid and mount namespaces (inodes) and cgroup v2 id (0: no cgroup2 mounted where sockgen looks) */
  pidns: number;
  mntns: number;
  cgroup: number;
}

export function sockgen(...args: string[]): Gen {
  const out = execFileSync(SOCKGEN, args, { encoding: 'utf8' });
  return JSON.parse(out) as Gen;
}

export interface Rec extends DecodedHeader {
  tsNs: bigint;
  origLen: number;
  direction?: number;
}

export function records(cap: Capture | string): Rec[] {
  const c = typeof cap === 'string' ? readPcapng(cap) : cap;
  return c.packets.map((p) => ({ ...decodeLinkHeader(p.data), tsNs: p.tsNs, origLen: p.origLen, direction: p.flags }));
}

/** Runs tshark with our dissector; returns stdout (stderr must not hold Lua errors). */
export function tshark(args: string[], opts: { allowStderr?: boolean } = {}): string {
  // an empty HOME: no personal preferences and no installed copy of unixsock.lua beside ours
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'unixsock-home-'));
  const r = spawnSync('tshark', ['-X', `lua_script:${LUA}`, ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    env: { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config') },
  });
  fs.rmSync(home, { recursive: true, force: true });
  const stderr = (r.stderr ?? '').split('\n').filter((l) => l && !/Running as user "root"|This could be dangerous/.test(l));
  if (r.status !== 0) throw new Error(`tshark ${args.join(' ')} failed (${r.status}): ${stderr.join('\n')}`);
  if (stderr.some((l) => /Lua|lua/.test(l))) throw new Error(`tshark printed Lua errors: ${stderr.join('\n')}`);
  if (!opts.allowStderr && stderr.length) throw new Error(`tshark printed: ${stderr.join('\n')}`);
  return r.stdout;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits until a Unix socket file exists (a server is listening). */
export async function waitForSocket(p: string, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (!fs.existsSync(p)) {
    if (Date.now() > end) throw new Error(`${p} did not appear`);
    await sleep(20);
  }
}

/** Resolves with the exit code, also when the process has already exited. */
export function exited(p: ChildProcess): Promise<number | null> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p.exitCode);
  return new Promise((resolve) => p.once('exit', (code) => resolve(code)));
}

/**
 * Starts Xvfb on a display nobody holds: Xvfb picks the first free number and
 * tells it on a pipe (-displayfd), so tests running side by side, or a desktop's
 * own X server, never meet. Resolves once the server's socket exists.
 */
export async function startXvfb(t: TestContext, ...args: string[]): Promise<{ proc: ChildProcess; display: string }> {
  const proc = spawn('Xvfb', ['-displayfd', '3', '-nolisten', 'tcp', ...args], { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
  t.after(() => {
    proc.kill();
  });
  const n = await new Promise<string>((resolve, reject) => {
    let got = '';
    proc.stdio[3]!.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.includes('\n')) resolve(got.trim());
    });
    proc.once('exit', (code) => reject(new Error(`Xvfb exited (${code}) before it named its display`)));
    setTimeout(() => reject(new Error('Xvfb named no display within 20 s')), 20000 * SLOWDOWN).unref();
  });
  await waitForSocket(`/tmp/.X11-unix/X${n}`);
  return { proc, display: `:${n}` };
}
