// The Wireshark versions the tests run against: the host's tshark (Debian 12:
// 4.0, Lua 5.2) and the tshark of Debian 13 trixie (4.4, Lua 5.4) and of sid
// (4.6, Lua 5.4), each in a minimal root made by test/chroot/make-root.sh
// (cached in ~/.cache/unixsock/chroots, about 25 s to build once) and entered
// through test/chroot/run-in.sh (a private mount namespace: nothing stays
// mounted).
//
// Inside a root, the host's temporary folder (where every test keeps its
// captures) and this checkout are bind-mounted at their own paths, so a test
// passes the same arguments to every version. Captures are always made on the
// host; only decoding, listing and installing run in the roots.
//
// The cached roots are shared by every test run on the machine: tests write
// into them only through bind mounts, never into the root itself.
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { CI, LUA, ROOT, tshark as hostTshark } from './harness';

export interface TsharkOptions {
  allowStderr?: boolean;
}

export interface ExecOptions {
  /** run as this user (setpriv), e.g. 'nobody'; default root */
  user?: string;
  /** HOME for the command (a host path under the temporary folder); default a fresh empty one */
  home?: string;
  /** extra bind mounts inside a root: [host path, path inside]; ignored on the host */
  binds?: [string, string][];
  env?: Record<string, string>;
  timeout?: number;
}

export interface Wireshark {
  /** e.g. "4.4.19 (Debian trixie)" */
  name: string;
  /** e.g. "4.4.19" */
  version: string;
  /** true for the host's own tshark */
  host: boolean;
  /**
   * tshark with wireshark/unixsock.lua loaded, returns stdout; fails on a
   * non-zero exit or any Lua error (as harness.tshark does for the host).
   */
  tshark: (args: string[], opts?: TsharkOptions) => string;
  /** a command in this version's userland (clean environment, root unless opts.user) */
  exec: (argv: string[], opts?: ExecOptions) => SpawnSyncReturns<string>;
  /** the same, started in the background (for live captures); opts.home is required */
  spawn: (argv: string[], opts: ExecOptions & { home: string }) => ChildProcess;
  /** `tshark -G folders` for root with the given HOME: "Personal Extcap path" → path … */
  folders: (opts?: ExecOptions) => Map<string, string>;
}

interface RootSpec {
  name: string;
  suite: string;
}

/** The roots next to the host's tshark; the package list is the one every caller uses, so the cache is shared. */
const ROOTS: RootSpec[] = [
  { name: 'ws-trixie', suite: 'trixie' },
  { name: 'ws-sid', suite: 'sid' },
];
const ROOT_PACKAGES = ['tshark'];
const MAKE_ROOT = path.join(ROOT, 'test/chroot/make-root.sh');
const RUN_IN = path.join(ROOT, 'test/chroot/run-in.sh');
const TMP = fs.realpathSync(os.tmpdir());
const PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** where the checkout's wireshark/ folder is mounted inside a root's global Lua plugin folder */
const LUA_MOUNT = 'unixsock-under-test';

const ROOT_WARNING = /Running as user "root"|This could be dangerous/;

function checkTshark(args: string[], r: SpawnSyncReturns<string>, opts: TsharkOptions): string {
  const stderr = (r.stderr ?? '').split('\n').filter((l) => l && !ROOT_WARNING.test(l));
  if (r.error) throw new Error(`tshark ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`tshark ${args.join(' ')} failed (${r.status}): ${stderr.join('\n')}`);
  if (stderr.some((l) => /Lua|lua/.test(l))) throw new Error(`tshark printed Lua errors: ${stderr.join('\n')}`);
  if (!opts.allowStderr && stderr.length) throw new Error(`tshark printed: ${stderr.join('\n')}`);
  return r.stdout;
}

function freshHome(): string {
  const home = fs.mkdtempSync(path.join(TMP, 'unixsock-home-'));
  fs.chmodSync(home, 0o755);
  return home;
}

/** `tshark -G folders` as label → path (the first of each label). */
export function parseFolders(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of out.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !m.has(line.slice(0, i).trim())) m.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return m;
}

function asUser(argv: string[], user?: string): string[] {
  if (!user) return argv;
  // the user's own primary group; no supplementary groups (as a login would have none of root's)
  return ['setpriv', `--reuid=${user}`, `--regid=${user === 'nobody' ? 'nogroup' : user}`, '--clear-groups', '--', ...argv];
}

function withHome<T>(opts: ExecOptions, fn: (home: string) => T): T {
  const own = !opts.home;
  const home = opts.home ?? freshHome();
  try {
    return fn(home);
  } finally {
    if (own) fs.rmSync(home, { recursive: true, force: true });
  }
}

const versionOf = (out: string) => /TShark \(Wireshark\) (\d+\.\d+\.\d+)/.exec(out)?.[1] ?? '?';

function hostWireshark(): Wireshark | string {
  const v = spawnSync('tshark', ['--version'], { encoding: 'utf8' });
  if (v.status !== 0) return 'tshark is not installed on the host (scripts/deps.sh installs it)';
  const version = versionOf(v.stdout);
  const env = (home: string, opts: ExecOptions) => ({ PATH: PATH_ENV, HOME: home, LANG: 'C.UTF-8', ...opts.env });
  const exec = (argv: string[], opts: ExecOptions = {}) =>
    withHome(opts, (home) =>
      spawnSync(asUser(argv, opts.user)[0], asUser(argv, opts.user).slice(1), {
        encoding: 'utf8',
        maxBuffer: 1 << 28,
        env: env(home, opts),
        timeout: opts.timeout,
      }),
    );
  return {
    name: `${version} (this machine)`,
    version,
    host: true,
    tshark: (args, opts = {}) => hostTshark(args, opts),
    exec,
    spawn: (argv, opts) => {
      const a = asUser(argv, opts.user);
      return spawn(a[0], a.slice(1), { env: env(opts.home, opts), stdio: ['ignore', 'pipe', 'pipe'] });
    },
    folders: (opts = {}) => parseFolders(exec(['tshark', '-G', 'folders'], opts).stdout),
  };
}

function chrootWireshark(spec: RootSpec): Wireshark | string {
  if (process.geteuid?.() !== 0) return 'not running as root (entering a Debian root needs mount namespaces)';
  if (spawnSync('sh', ['-c', 'command -v mmdebstrap']).status !== 0) return 'mmdebstrap is not installed (scripts/deps.sh installs it)';
  const made = spawnSync('bash', [MAKE_ROOT, spec.name, spec.suite, ...ROOT_PACKAGES], { encoding: 'utf8', timeout: 15 * 60 * 1000 });
  if (made.status !== 0) return `cannot build the Debian ${spec.suite} root: ${(made.stderr || String(made.error ?? '')).trim()}`;
  const root = made.stdout.trim();
  let globalLua = ''; // read below, once tshark runs there
  const runIn = (argv: string[], opts: ExecOptions, home: string, lua: boolean): string[] => {
    const binds: string[] = ['--bind', TMP, '--bind', ROOT];
    if (lua) binds.push('--bind', `${path.dirname(LUA)}:${globalLua}/${LUA_MOUNT}`);
    for (const [src, dst] of opts.binds ?? []) binds.push('--bind', `${src}:${dst}`);
    const envs = Object.entries({ HOME: home, ...opts.env }).flatMap(([k, v]) => ['--env', `${k}=${v}`]);
    return [RUN_IN, root, ...binds, ...envs, '--', ...asUser(argv, opts.user)];
  };
  // Commands other than the decoding tshark get a fresh, empty global Lua plugin folder unless the
  // caller mounts one: an install as root puts the dissector there on 4.4+, and the root must stay as cached.
  const scratchLua = (opts: ExecOptions): { opts: ExecOptions; dir?: string } => {
    if (!globalLua || (opts.binds ?? []).some(([, dst]) => dst === globalLua)) return { opts };
    const dir = fs.mkdtempSync(path.join(TMP, 'unixsock-global-lua-'));
    return { opts: { ...opts, binds: [...(opts.binds ?? []), [dir, globalLua]] }, dir };
  };
  const run = (argv: string[], opts: ExecOptions = {}, lua = false) =>
    withHome(opts, (home) => {
      const s = lua ? { opts } : scratchLua(opts);
      try {
        return spawnSync('bash', runIn(argv, s.opts, home, lua), { encoding: 'utf8', maxBuffer: 1 << 28, timeout: opts.timeout });
      } finally {
        if (s.dir) fs.rmSync(s.dir, { recursive: true, force: true });
      }
    });
  const v = run(['tshark', '--version']);
  if (v.status !== 0) return `tshark does not run in the Debian ${spec.suite} root: ${v.stderr.trim()}`;
  const version = versionOf(v.stdout);
  const folders = (opts: ExecOptions = {}) => parseFolders(run(['tshark', '-G', 'folders'], opts).stdout);
  // Wireshark 4.4+ run as root skips personal Lua plugins and -X lua_script without a word:
  // the dissector under test is mounted into the global Lua plugin folder instead
  globalLua = folders().get('Global Lua Plugins') ?? '';
  if (!globalLua) return `tshark -G folders in the Debian ${spec.suite} root names no global Lua plugin folder`;
  return {
    name: `${version} (Debian ${spec.suite})`,
    version,
    host: false,
    tshark: (args, opts = {}) => checkTshark(args, run(['tshark', ...args], {}, true), opts),
    exec: (argv, opts = {}) => run(argv, opts),
    spawn: (argv, opts) => {
      const s = scratchLua(opts);
      const child = spawn('bash', runIn(argv, s.opts, opts.home, false), { stdio: ['ignore', 'pipe', 'pipe'] });
      child.on('exit', () => s.dir && fs.rmSync(s.dir, { recursive: true, force: true }));
      return child;
    },
    folders,
  };
}

const cache = new Map<string, Wireshark | string>();
function setUp(key: string, make: () => Wireshark | string): Wireshark | string {
  if (!cache.has(key)) cache.set(key, make());
  return cache.get(key)!;
}

/** Every version, set up (or the reason it cannot be), host first. */
export function wiresharks(): { key: string; ws: () => Wireshark | string }[] {
  // UNIXSOCK_WIRESHARKS=host,trixie,...: only those (test/chroot/debian13.sh, already inside a
  // Debian 13 root, runs its own Wireshark only instead of building roots inside the root)
  const only = process.env.UNIXSOCK_WIRESHARKS?.split(',');
  return [
    { key: 'host', ws: () => setUp('host', hostWireshark) },
    ...ROOTS.map((r) => ({ key: r.suite, ws: () => setUp(r.suite, () => chrootWireshark(r)) })),
  ].filter((w) => !only || only.includes(w.key));
}

/**
 * Runs `body` once per Wireshark version, each as a subtest named after the
 * version. A version that cannot be set up fails under CI and is skipped with
 * the reason elsewhere.
 */
export async function forEachWireshark(t: TestContext, body: (ws: Wireshark) => void | Promise<void>): Promise<void> {
  for (const { key, ws } of wiresharks()) {
    await t.test(`Wireshark ${key === 'host' ? 'on this machine' : `in Debian ${key}`}`, async (st) => {
      const w = ws();
      if (typeof w === 'string') {
        if (CI) throw new Error(`cannot run against this Wireshark under CI: ${w}`);
        st.skip(w);
        return;
      }
      st.diagnostic(`tshark ${w.name}`);
      await body(w);
    });
  }
}
