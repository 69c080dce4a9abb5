// A Docker for the end-to-end tests: dockerd started by the test (its own
// data-root, exec-root and pidfile, so it meets no other dockerd on the
// machine and leaves nothing behind), the real docker CLI talking to it, and
// an image made offline from busybox-static plus the static
// test/helpers/sockgen (no registry is reachable from CI). Its API socket is
// the machine's /run/docker.sock, where the CLI and every SDK look by
// default, when nothing listens there and no other test run holds it;
// otherwise a socket of its own (dockerSocket below).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { CI, ROOT, need, sleep } from './harness';

export const SOCKGEN_STATIC = path.join(ROOT, 'build', 'sockgen-static');
export const IMAGE = 'unixsock-test:busybox';

export const SYSTEM_SOCK = '/run/docker.sock';
/**
 * Held (bound) by the one test run on the machine whose dockerd serves
 * SYSTEM_SOCK: an abstract socket, so the kernel lets it go when that run
 * ends, however it ends (no stale lock file to judge).
 */
const SYSTEM_SOCK_LOCK = '\0unixsock-test-run-docker-sock';

export interface Dockerd {
  /** the API socket (what docker -H unix://… and the capture's name lookup use) */
  sock: string;
  /** sock is SYSTEM_SOCK: the CLI runs with its defaults (no -H, no DOCKER_HOST) */
  system: boolean;
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

/** Whether something accepts connections on a Unix socket path (a connect, not the file's existence: a dead daemon leaves its socket file). */
function listening(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(sock);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    // refused: a socket file nobody listens on; absent: none; anything else (EACCES, ...) counts as taken
    c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code !== 'ECONNREFUSED' && e.code !== 'ENOENT'));
  });
}

/** Binds SYSTEM_SOCK_LOCK; undefined when another test run holds it. */
function lockSystemSock(): Promise<net.Server | undefined> {
  return new Promise((resolve, reject) => {
    const lock = net.createServer();
    lock.once('error', (e: NodeJS.ErrnoException) => (e.code === 'EADDRINUSE' ? resolve(undefined) : reject(e)));
    lock.listen(SYSTEM_SOCK_LOCK, () => {
      lock.unref(); // a lock, not work: it keeps no test process alive
      resolve(lock);
    });
  });
}

/**
 * The API socket for this test's dockerd: SYSTEM_SOCK when no daemon listens
 * there (a fresh CI machine: docker.io installed, no systemd to start one)
 * and no other test run holds it (helpers run this test side by side), with
 * the lock to release once the daemon is stopped; else a socket in dir, and
 * why. A daemon the test did not start is never touched: only connected to.
 */
async function dockerSocket(dir: string): Promise<{ sock: string; lock?: net.Server; why?: string }> {
  const own = { sock: path.join(dir, 'docker.sock') };
  const lock = await lockSystemSock();
  if (!lock) return { ...own, why: `another test run's dockerd serves ${SYSTEM_SOCK}` };
  let why: string | undefined;
  const st = fs.lstatSync(SYSTEM_SOCK, { throwIfNoEntry: false });
  if (st && !st.isSocket()) why = `${SYSTEM_SOCK} exists and is no socket`;
  else if (await listening(SYSTEM_SOCK)) why = `a dockerd this test did not start listens on ${SYSTEM_SOCK}`;
  if (why) {
    lock.close();
    return { ...own, why };
  }
  return { sock: SYSTEM_SOCK, lock };
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
  const { sock, lock, why } = await dockerSocket(dir);
  const system = sock === SYSTEM_SOCK;
  t.diagnostic(system ? `dockerd on ${SYSTEM_SOCK}` : `dockerd on its own socket ${sock}: ${why}`);
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
  const made: { sockIno?: number } = {}; // the socket file this daemon made (removed after it, if still there)
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
    if (system) {
      // dockerd removes its socket on a clean stop; one killed after 30 s leaves it (refused, not absent: harmless, but not ours to leave)
      if (made.sockIno !== undefined && fs.lstatSync(SYSTEM_SOCK, { throwIfNoEntry: false })?.ino === made.sockIno && !(await listening(SYSTEM_SOCK))) {
        fs.rmSync(SYSTEM_SOCK, { force: true });
      }
      lock?.close();
    }
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
  // on SYSTEM_SOCK the CLI finds the daemon by itself, as a user's does: no -H, no DOCKER_HOST or context,
  // an empty configuration folder
  const cliEnv: NodeJS.ProcessEnv = { ...process.env, DOCKER_CONFIG: path.join(dir, 'cli') };
  delete cliEnv.DOCKER_HOST;
  delete cliEnv.DOCKER_CONTEXT;
  const cli = (args: string[]) => (system ? args : ['-H', host, ...args]);
  const docker = (args: string[], opts: { input?: string } = {}) =>
    execFileSync('docker', cli(args), { encoding: 'utf8', input: opts.input, env: cliEnv, stdio: ['pipe', 'pipe', 'pipe'], timeout: 60000 }).trim();
  const dockerAsync = (args: string[]) =>
    new Promise<string>((resolve, reject) => {
      const p = spawn('docker', cli(args), { env: cliEnv, stdio: ['ignore', 'pipe', 'pipe'] });
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
      return fs.existsSync(sock) && spawnSync('docker', cli(['version']), { env: cliEnv, stdio: 'ignore', timeout: 10000 }).status === 0;
    },
    readLog,
  );
  made.sockIno = fs.statSync(sock).ino;
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
  execFileSync('docker', cli(['import', '-', IMAGE]), { input: tar.stdout, env: cliEnv, stdio: ['pipe', 'ignore', 'pipe'] });
  return { sock, system, host, pid, dir, docker, dockerAsync, image: IMAGE };
}
