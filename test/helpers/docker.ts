// A private Docker for the end-to-end tests: dockerd started by the test
// (its own data-root, exec-root, pidfile and API socket, so it meets no other
// dockerd on the machine and leaves nothing behind), the real docker CLI
// talking to it, and an image made offline from busybox-static plus the
// static test/helpers/sockgen (no registry is reachable from CI).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { CI, ROOT, need, sleep } from './harness';

export const SOCKGEN_STATIC = path.join(ROOT, 'build', 'sockgen-static');
export const IMAGE = 'unixsock-test:busybox';

export interface Dockerd {
  /** the API socket (what docker -H unix://… and the capture's name lookup use) */
  sock: string;
  /** DOCKER_HOST for the CLI and the capture */
  host: string;
  pid: number;
  dir: string;
  /** the docker CLI against this daemon; stdout, trimmed */
  docker(args: string[], opts?: { input?: string }): string;
  /** the same without blocking the event loop (a container that talks to a server in this process) */
  dockerAsync(args: string[]): Promise<string>;
  /** where busybox and sockgen are in the image: /bin/busybox, /sockgen */
  image: string;
}

/** Whether an ELF executable asks for a dynamic loader (has a PT_INTERP program header). */
function dynamic(file: string): boolean {
  const b = fs.readFileSync(file);
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return true; // not a 64-bit ELF: not usable either
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  const phnum = b.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) if (b.readUInt32LE(phoff + i * phentsize) === 3) return true;
  return false;
}

/** busybox-static's busybox (a dynamic one would not run in the empty image). */
function busybox(): string | undefined {
  return ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p) && !dynamic(p));
}

/** Waits until `ok()` or throws after ms. */
async function until(what: string, ms: number, ok: () => boolean, log: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`${what} within ${ms} ms; dockerd said:\n${log().slice(-3000)}`);
    await sleep(100);
  }
}

/**
 * Starts dockerd for this test (stopped by pid in t.after), imports the
 * busybox image. Skips (fails under CI=true) when docker.io is missing or
 * dockerd cannot start here.
 */
export async function startDockerd(t: TestContext, onCleanup: (fn: () => Promise<void>) => void = (fn) => t.after(fn)): Promise<Dockerd | undefined> {
  if (!need(t, 'dockerd', 'docker')) return undefined;
  const bb = busybox();
  if (!bb || !fs.existsSync(SOCKGEN_STATIC)) {
    const why = !bb ? 'no static busybox (busybox-static)' : 'build/sockgen-static is not built (npm run build)';
    if (CI) throw new Error(why);
    t.skip(why);
    return undefined;
  }
  // short: the API socket's path must fit sun_path with room to spare
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usd-'));
  fs.chmodSync(dir, 0o755);
  const sock = path.join(dir, 'docker.sock');
  const logFile = path.join(dir, 'dockerd.log');
  const logFd = fs.openSync(logFile, 'w');
  const readLog = () => fs.readFileSync(logFile, 'utf8');
  // detached: its own session (setsid), so a stop signal for the test's own group never reaches it and its containerd
  const proc = spawn(
    'dockerd',
    [
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
      '--data-root',
      path.join(dir, 'root'),
      '--exec-root',
      path.join(dir, 'exec'),
      '--pidfile',
      path.join(dir, 'dockerd.pid'),
      '-H',
      `unix://${sock}`,
      '--log-level',
      'warn',
    ],
    { detached: true, stdio: ['ignore', logFd, logFd] },
  );
  fs.closeSync(logFd);
  const pid = proc.pid!;
  onCleanup(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      process.kill(pid, 'SIGTERM');
      const end = Date.now() + 30000;
      while (proc.exitCode === null && proc.signalCode === null && Date.now() < end) await sleep(100);
      // containerd and shims left behind by a dockerd that hung: its own session, so its own group
      if (proc.exitCode === null && proc.signalCode === null) process.kill(-pid, 'SIGKILL');
    }
    // overlay mounts of a daemon that did not unmount them itself
    const mounts = fs
      .readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1])
      .filter((m) => m && m.startsWith(dir + '/'))
      .reverse();
    for (const m of mounts) spawnSync('umount', ['-l', m]);
    fs.rmSync(dir, { recursive: true, force: true });
    // the parent cgroup dockerd made (/docker in every hierarchy), once empty: rmdir refuses a busy one
    const roots = fs
      .readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' '))
      .filter((f) => f[2] === 'cgroup' || f[2] === 'cgroup2')
      .map((f) => f[1]);
    for (const r of roots) {
      try {
        fs.rmdirSync(path.join(r, 'docker'));
      } catch {
        // absent, or another dockerd's containers are in it
      }
    }
  });
  const host = `unix://${sock}`;
  const docker = (args: string[], opts: { input?: string } = {}) =>
    execFileSync('docker', ['-H', host, ...args], { encoding: 'utf8', input: opts.input, stdio: ['pipe', 'pipe', 'pipe'], timeout: 60000 }).trim();
  const dockerAsync = (args: string[]) =>
    new Promise<string>((resolve, reject) => {
      const p = spawn('docker', ['-H', host, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (b) => (out += b));
      p.stderr.on('data', (b) => (err += b));
      const timer = setTimeout(() => p.kill('SIGKILL'), 120000);
      p.on('close', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve(out.trim());
        else reject(new Error(`docker ${args.join(' ')} failed (${code}): ${err}`));
      });
    });
  const started = Date.now();
  await until(
    'dockerd did not answer',
    60000,
    () => {
      if (proc.exitCode !== null) throw new Error(`dockerd exited (${proc.exitCode}):\n${readLog().slice(-3000)}`);
      return fs.existsSync(sock) && spawnSync('docker', ['-H', host, 'version'], { stdio: 'ignore', timeout: 10000 }).status === 0;
    },
    readLog,
  );
  t.diagnostic(`dockerd ${pid} answered after ${Date.now() - started} ms`);

  // the image: busybox with its applets, and sockgen
  const rootfs = path.join(dir, 'rootfs');
  fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(rootfs, 'srv'));
  fs.mkdirSync(path.join(rootfs, 'tmp'));
  fs.copyFileSync(bb, path.join(rootfs, 'bin', 'busybox'));
  fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
  for (const a of ['sh', 'sleep', 'cat', 'ls', 'test', '[']) fs.symlinkSync('busybox', path.join(rootfs, 'bin', a));
  fs.copyFileSync(SOCKGEN_STATIC, path.join(rootfs, 'sockgen'));
  fs.chmodSync(path.join(rootfs, 'sockgen'), 0o755);
  const tar = spawnSync('tar', ['-C', rootfs, '-c', '.'], { maxBuffer: 1 << 28 });
  if (tar.status !== 0) throw new Error(`tar: ${tar.stderr.toString()}`);
  execFileSync('docker', ['-H', host, 'import', '-', IMAGE], { input: tar.stdout, stdio: ['pipe', 'ignore', 'pipe'] });
  return { sock, host, pid, dir, docker, dockerAsync, image: IMAGE };
}
