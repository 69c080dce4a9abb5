// End-to-end: the privilege model of a --system install (docs/threat-model.md).
// A system-style install into a temporary root-owned folder (group wireshark,
// 0750, cap_bpf,cap_perfmon, the engine and the policy beside it), a member of
// the group and a user who is not, and what a member could try: swap the
// addon while the capture loads it (inotify + SIGSTOP + rename, a C program
// run as the member), ptrace, /proc/PID/mem, SIGUSR1, hostile output paths,
// options against the own-uid policy.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { EXE, ROOT, SOCKGEN, need, needBpf, records, sleep, tshark } from '../helpers/harness';

const MEMBER = 'unixsock-priv';
const OTHER = 'unixsock-priv2';

interface Setup {
  /** the installed executable and its folder (root's, 0755 up to /) */
  exe: string;
  dir: string;
  /** the member's own folder (the capture's outputs, the marker) */
  work: string;
  /** test programs any user can run */
  tools: string;
  member: { uid: number; gid: number; groups: number[] };
  other: { uid: number; gid: number };
  wiresharkGid: number;
}

let setup: Setup | undefined;
const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups.reverse()) c();
});

function ids(user: string): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, user], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

function install(extra: string[] = []): string {
  return execFileSync('bash', [path.join(ROOT, 'scripts/install-extcap.sh'), '--system', '--no-build', '--extcap-dir', setup!.dir, ...extra], {
    encoding: 'utf8',
  });
}

function prepare(t: TestContext): Setup | undefined {
  if (!needBpf(t) || !need(t, 'useradd', 'setcap', 'getcap', 'cc', 'tshark', 'ldd')) return undefined;
  if (setup) return setup;
  for (const u of [MEMBER, OTHER]) {
    spawnSync('userdel', [u]);
    execFileSync('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', u]);
    cleanups.push(() => spawnSync('userdel', [u]));
  }
  spawnSync('groupadd', ['--system', 'wireshark']);
  execFileSync('usermod', ['-aG', 'wireshark', MEMBER]);
  const wiresharkGid = Number(execFileSync('getent', ['group', 'wireshark'], { encoding: 'utf8' }).split(':')[2]);
  // every folder up to / must be root's and writable by root only: not /tmp (1777)
  // and not the checkout (it may sit under /root, which other users cannot enter)
  const dir = fs.mkdtempSync('/var/lib/unixsock-test-');
  fs.chmodSync(dir, 0o755);
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const tools = path.join(dir, 'tools');
  fs.mkdirSync(tools, { mode: 0o755 });
  const m = ids(MEMBER);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'unixsock-priv-'));
  fs.chmodSync(work, 0o755);
  fs.chownSync(work, m.uid, m.gid);
  cleanups.push(() => fs.rmSync(work, { recursive: true, force: true }));
  execFileSync('cc', ['-O2', '-Wall', '-o', path.join(tools, 'swap-attack'), path.join(ROOT, 'test/helpers/swap-attack.c')]);
  execFileSync('cc', [
    '-O2',
    '-Wall',
    '-shared',
    '-fPIC',
    `-DMARKER="${path.join(work, 'MARKER')}"`,
    '-o',
    path.join(tools, 'evil.so'),
    path.join(ROOT, 'test/helpers/evil.c'),
  ]);
  fs.copyFileSync(SOCKGEN, path.join(tools, 'sockgen'));
  fs.chmodSync(path.join(tools, 'sockgen'), 0o755);
  setup = { exe: path.join(dir, 'unixsock'), dir, work, tools, member: { ...m, groups: [m.gid, wiresharkGid] }, other: ids(OTHER), wiresharkGid };
  const out = install();
  assert.match(out, /installed \S+\/unixsock \(group wireshark, 0750, cap_bpf,cap_perfmon\)/);
  return setup;
}

/** Runs as the member: primary group wireshark (Node's spawn drops supplementary groups). */
function asMember(s: Setup) {
  return { uid: s.member.uid, gid: s.wiresharkGid, env: { PATH: '/usr/bin:/bin', TMPDIR: '/tmp', HOME: s.work } };
}

function asOther(s: Setup) {
  return { uid: s.other.uid, gid: s.other.gid, env: { PATH: '/usr/bin:/bin', TMPDIR: '/tmp' } };
}

interface Live {
  proc: ChildProcess;
  err: () => string;
  stop(): Promise<number | null>;
}

/** Starts a capture as the member and waits for its probes. */
async function memberCapture(t: TestContext, s: Setup, args: string[]): Promise<Live> {
  const proc = spawn(s.exe, args, { ...asMember(s), stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d) => (err += d));
  t.after(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
  });
  const deadline = Date.now() + 30000;
  while (!err.includes('capturing')) {
    if (proc.exitCode !== null) throw new Error(`member's capture exited (${proc.exitCode}): ${err}`);
    if (Date.now() > deadline) throw new Error(`member's capture did not start: ${err}`);
    await sleep(20);
  }
  const done = new Promise<number | null>((r) => (proc.exitCode !== null ? r(proc.exitCode) : proc.on('exit', (c) => r(c))));
  return {
    proc,
    err: () => err,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return done;
    },
  };
}

/** Every task's capability sets of a process. */
function capsOf(pid: number): string[] {
  const held: string[] = [];
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    let st: string;
    try {
      st = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    } catch {
      continue;
    }
    for (const k of ['CapEff', 'CapPrm', 'CapAmb', 'CapInh']) {
      const v = new RegExp(`^${k}:\\s*([0-9a-f]+)$`, 'm').exec(st)?.[1];
      if (v === undefined || BigInt(`0x${v}`) !== 0n) held.push(`task ${tid} ${k} ${v}`);
    }
  }
  return held;
}

function sockgenAs(s: Setup, who: 'member' | 'other' | 'root'): { pid: number; uid: number } {
  const opts = who === 'member' ? asMember(s) : who === 'other' ? asOther(s) : {};
  return JSON.parse(execFileSync(path.join(s.tools, 'sockgen'), ['stream-pair'], { ...opts, encoding: 'utf8' })) as { pid: number; uid: number };
}

describe('privileges of a --system install', () => {
  it('installs root-owned: the executable 0750 group wireshark with cap_bpf,cap_perfmon, the engine and policy 0644 beside it', (t) => {
    const s = prepare(t);
    if (!s) return;
    const st = fs.statSync(s.exe);
    assert.equal(st.mode & 0o7777, 0o750);
    assert.equal(st.uid, 0);
    assert.equal(st.gid, s.wiresharkGid);
    assert.match(execFileSync('getcap', [s.exe], { encoding: 'utf8' }), /cap_perfmon,cap_bpf=ep|cap_bpf,cap_perfmon=ep/);
    for (const f of ['unixsock.node', 'unixsock.policy']) {
      const fst: fs.Stats = fs.statSync(path.join(s.dir, f));
      assert.equal(fst.uid, 0, f);
      // not executable: Wireshark runs every executable file of its extcap folder
      assert.equal(fst.mode & 0o7777, 0o644, f);
    }
    assert.deepEqual(fs.readFileSync(path.join(s.dir, 'unixsock.node')), fs.readFileSync(path.join(ROOT, 'build/unixsock.node')));
    assert.match(fs.readFileSync(path.join(s.dir, 'unixsock.policy'), 'utf8'), /^members = everything$/m);
  });

  it('a user who is not in the group cannot run it', (t) => {
    const s = prepare(t);
    if (!s) return;
    const r = spawnSync(s.exe, ['--duration', '1'], { ...asOther(s), encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.equal(r.error?.message.includes('EACCES') ?? false, true, String(r.error));
  });

  it("the swap attack (inotify, SIGSTOP, rename over the addon) run by a member: the attacker's library never runs, the capture works", (t) => {
    const s = prepare(t);
    if (!s) return;
    const marker = path.join(s.work, 'MARKER');
    fs.rmSync(marker, { force: true });
    const cap = path.join(s.work, 'attacked.pcapng');
    const r = spawnSync(path.join(s.tools, 'swap-attack'), ['/tmp', path.join(s.tools, 'evil.so'), '--', s.exe, '--duration', '2', '-q', '-w', cap], {
      ...asMember(s),
      encoding: 'utf8',
      timeout: 60000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'nothing to swap', r.stderr);
    assert.ok(!fs.existsSync(marker), `the attacker's code ran: ${fs.existsSync(marker) ? fs.readFileSync(marker, 'utf8') : ''}`);
    assert.ok(fs.statSync(cap).size > 0);
    // The control: the same attack against the same executable without
    // capabilities (it then extracts its addon into /tmp as before) swaps the
    // file and its code runs, with no capability at all. It is a race the
    // attacker nearly always wins (5 of 5 on a quiet machine); under heavy load
    // it may take a few tries.
    const plain = path.join(s.tools, 'unixsock-nocaps');
    fs.copyFileSync(EXE, plain);
    fs.chmodSync(plain, 0o755);
    let tries = 0;
    while (!fs.existsSync(marker) && tries < 10) {
      tries++;
      spawnSync(path.join(s.tools, 'swap-attack'), ['/tmp', path.join(s.tools, 'evil.so'), '--', plain, '--duration', '1', '-q', '-w', cap], {
        ...asMember(s),
        encoding: 'utf8',
        timeout: 60000,
      });
    }
    assert.ok(fs.existsSync(marker), `the control attack never won in ${tries} tries`);
    const ran = fs.readFileSync(marker, 'utf8');
    assert.match(ran, /^CapEff:\s*0+$/m);
    assert.match(ran, /^CapPrm:\s*0+$/m);
    fs.rmSync(marker);
  });

  it("during a member's capture: no capability in any thread, no executable mapping the member could write, no ptrace, no /proc/PID/mem, SIGUSR1 starts no debugger; the capture decodes", async (t) => {
    const s = prepare(t);
    if (!s) return;
    const file = path.join(s.work, 'member.pcapng');
    // (only sockgen: the machine's other traffic, other tests' X11 for one, is not this test's to decode)
    const live = await memberCapture(t, s, ['-w', file, '--log-file', path.join(s.work, 'member.log'), 'comm', 'sockgen']);
    const pid = live.proc.pid!;
    assert.deepEqual(capsOf(pid), [], 'capabilities after attach');
    // every executable mapping: a file neither owned nor writable by the member
    const maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n');
    const exec = maps.filter((l) => /^\S+ ..x. /.test(l));
    const files = [...new Set(exec.map((l) => l.split(/\s+/).slice(5).join(' ')).filter((f) => f.startsWith('/')))];
    assert.ok(
      files.some((f) => f.endsWith('/unixsock.node')),
      files.join('\n'),
    );
    for (const f of files) {
      assert.doesNotMatch(f, /\(deleted\)/, `a deleted file is mapped executable: ${f}`);
      const st = fs.statSync(f);
      const writable = st.uid === s.member.uid || (st.mode & 0o002) !== 0 || ((st.mode & 0o020) !== 0 && s.member.groups.includes(st.gid));
      assert.ok(!writable, `${f} (uid ${st.uid}, gid ${st.gid}, mode ${(st.mode & 0o7777).toString(8)}) is the member's to change`);
    }
    const attack = path.join(s.tools, 'swap-attack');
    const pt = spawnSync(attack, ['--ptrace', String(pid)], { ...asMember(s), encoding: 'utf8' });
    assert.equal(pt.stdout.trim(), 'EPERM', 'ptrace from the member');
    const mem = spawnSync(attack, ['--mem', String(pid)], { ...asMember(s), encoding: 'utf8' });
    assert.equal(mem.stdout.trim(), 'EACCES', '/proc/PID/mem from the member');
    // Node's inspector would start on SIGUSR1 (and run any code sent to it)
    process.kill(pid, 'SIGUSR1');
    const gen = sockgenAs(s, 'member');
    await sleep(1500);
    assert.equal(live.proc.exitCode, null, `SIGUSR1 ended the capture: ${live.err()}`);
    assert.doesNotMatch(live.err(), /Debugger listening/);
    assert.equal(await live.stop(), 0, live.err());
    assert.ok(fs.statSync(file).uid === s.member.uid, 'the output belongs to the member');
    const mine = records(file).filter((r) => r.pid === gen.pid && r.payload.toString().startsWith('MARK'));
    assert.equal(mine.map((r) => r.payload.toString()).join(','), 'MARK-stream-hello');
    // decoded by tshark with the dissector as before
    const out = tshark(['-r', file, '-Y', `unixsock.pid == ${gen.pid} && unixsock.len == 17`, '-T', 'fields', '-e', 'unixsock.comm', '-e', 'unixsock.uid']);
    assert.equal(out.trim(), `sockgen\t${s.member.uid}`);
  });

  it('SIGUSR1 at any moment from the exec on never starts a debugger (Node is built without its SIGUSR1 inspector)', async (t) => {
    const s = prepare(t);
    if (!s) return;
    // Node's inspector listens on 127.0.0.1:9229 (0x2405) once started: look for any listener there
    const inspectorListening = () =>
      ['/proc/net/tcp', '/proc/net/tcp6'].some((f) =>
        fs
          .readFileSync(f, 'utf8')
          .split('\n')
          .some((l) => /^\s*\d+: [0-9A-F]+:2405 [0-9A-F]+:0000 0A /.test(l)),
      );
    assert.ok(!inspectorListening(), 'something on this machine already listens on 9229');
    const outcomes: string[] = [];
    // the first SIGUSR1 at different moments of start-up (ms after the spawn), then one every millisecond
    for (const [run, delay] of [0, 10, 30, 60, 100, 200, 400, 800].entries()) {
      const proc = spawn(s.exe, ['-q', '--duration', '1', '-w', '/dev/null', 'comm', 'sockgen'], { ...asMember(s), stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      proc.stderr.on('data', (d) => (err += d));
      const done = new Promise<string>((r) => proc.on('exit', (code, sig) => r(sig ?? `exit ${code}`)));
      t.after(() => {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      });
      let ended = false;
      void done.then(() => (ended = true));
      // every millisecond (as the timers allow) from the spawn until the capture ends, as its member may
      let listened = false;
      await sleep(delay);
      while (!ended) {
        try {
          process.kill(proc.pid!, 'SIGUSR1');
        } catch {
          break; // gone
        }
        listened ||= inspectorListening();
        await sleep(1);
      }
      const how = await done;
      outcomes.push(`${delay} ms: ${how}`);
      assert.ok(!listened, `run ${run}: a debugger listened on 9229 (${err})`);
      assert.doesNotMatch(err, /Debugger listening|debugger was started/, `run ${run}`);
      // a SIGUSR1 before Node has any handler ends the member's own capture; after that the guard's handler takes it
      assert.ok(how === 'SIGUSR1' || how === 'exit 0', `run ${run} ended with ${how}: ${err}`);
    }
    t.diagnostic(`outcomes: ${outcomes.join(', ')}`);
  });

  it('hostile output paths from a member: one sentence, exit 2, nothing written', (t) => {
    const s = prepare(t);
    if (!s) return;
    const dangling = path.join(s.work, 'dangling');
    fs.rmSync(dangling, { force: true });
    fs.symlinkSync(path.join(s.dir, 'created-through-a-link'), dangling);
    const cases: [string[], string][] = [
      // the capture is not dumpable: its /proc files are root's, and the member's rights are all it has
      [['-w', '/proc/self/mem'], 'unixsock: cannot write "/proc/self/mem": EACCES'],
      [['--log-file', '/proc/self/mem', '-w', '/dev/null'], 'unixsock: cannot open log file "/proc/self/mem": EACCES'],
      [['-w', s.work], `unixsock: cannot write "${s.work}": EISDIR`],
      [['-w', dangling], `unixsock: cannot write "${dangling}": a symbolic link to nothing`],
      [['-w', path.join(s.dir, 'x.pcapng')], `unixsock: cannot write "${path.join(s.dir, 'x.pcapng')}": EACCES`],
      [
        ['--capture', '--extcap-interface', 'unixsock', '--fifo', path.join(s.dir, 'unixsock.policy')],
        `unixsock: cannot open fifo "${path.join(s.dir, 'unixsock.policy')}": EACCES`,
      ],
      [['--capture', '--extcap-interface', 'unixsock', '--fifo', '/dev/null'], 'unixsock: cannot open fifo "/dev/null": not a fifo'],
    ];
    for (const [args, msg] of cases) {
      const r: SpawnSyncReturns<string> = spawnSync(s.exe, [...args, '--duration', '1'], { ...asMember(s), encoding: 'utf8', timeout: 30000 });
      assert.equal(r.stderr, msg + '\n', args.join(' '));
      assert.equal(r.status, 2, args.join(' '));
    }
    assert.ok(!fs.existsSync(path.join(s.dir, 'created-through-a-link')));
    assert.ok(!fs.existsSync(path.join(s.dir, 'x.pcapng')));
    // root may open /proc/self/mem: refused all the same
    for (const [args, msg] of [
      [['-w', '/proc/self/mem'], 'unixsock: cannot write "/proc/self/mem": a kernel interface (procfs), not a place for a capture'],
      [
        ['--log-file', '/proc/self/mem', '-w', '/dev/null'],
        'unixsock: cannot open log file "/proc/self/mem": a kernel interface (procfs), not a place for a capture',
      ],
    ] as [string[], string][]) {
      const r: SpawnSyncReturns<string> = spawnSync(EXE, [...args, '--duration', '1'], { encoding: 'utf8', timeout: 30000 });
      assert.equal(r.stderr, msg + '\n', args.join(' '));
      assert.equal(r.status, 2, args.join(' '));
    }
  });

  it('refuses an engine or a folder a user could change, and an engine that is not its own', (t) => {
    const s = prepare(t);
    if (!s) return;
    const run = (): SpawnSyncReturns<string> => spawnSync(s.exe, ['--duration', '1', '-w', '/dev/null'], { ...asMember(s), encoding: 'utf8', timeout: 30000 });
    const engine = path.join(s.dir, 'unixsock.node');
    try {
      fs.chmodSync(s.dir, 0o775);
      let r = run();
      assert.equal(r.status, 1);
      assert.equal(
        r.stderr,
        `unixsock: cannot load the capture engine: the folder ${s.dir} must belong to root and be writable by root only (an executable with capabilities loads nothing a user could change): run scripts/install-extcap.sh --system again\n`,
      );
      fs.chmodSync(s.dir, 0o755);
      fs.chownSync(engine, s.member.uid, s.member.gid);
      r = run();
      assert.equal(r.status, 1);
      assert.match(r.stderr, /^unixsock: cannot load the capture engine: \S+unixsock\.node must belong to root and be writable by root only/);
      fs.chownSync(engine, 0, 0);
      fs.appendFileSync(engine, Buffer.from([0]));
      r = run();
      assert.equal(r.status, 1);
      assert.equal(
        r.stderr,
        `unixsock: cannot load the capture engine: ${engine} is not the engine this executable was built with: run scripts/install-extcap.sh --system again\n`,
      );
    } finally {
      fs.chmodSync(s.dir, 0o755);
      install();
    }
  });

  it("--own-uid-only: a member sees their own processes' messages and root's answers to them, none of another user's, whatever the options; root sees everything", async (t) => {
    const s = prepare(t);
    if (!s || !need(t, 'socat')) return;
    // a server of root's that echoes: its answer to the member is the member's
    // (the peer's SO_PEERCRED), its answer to the other user is not
    const sock = path.join(s.dir, 'echo.sock');
    const srv = spawn('socat', [`UNIX-LISTEN:${sock},fork,mode=777`, 'EXEC:cat'], { stdio: 'ignore' });
    t.after(() => srv.kill());
    for (let i = 0; i < 500 && !fs.existsSync(sock); i++) await sleep(20);
    assert.match(install(['--own-uid-only']), /members = own-uid/);
    t.after(() => install());
    const file = path.join(s.work, 'own.pcapng');
    // options that would widen the view if anything could: none can
    const live = await memberCapture(t, s, ['-w', file, 'not', 'comm', 'nothing-here']);
    const rootFile = path.join(s.work, 'root.pcapng');
    const rootCap = spawn(s.exe, ['-w', rootFile, 'not', 'comm', 'nothing-here'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let rootErr = '';
    rootCap.stderr.on('data', (d) => (rootErr += d));
    t.after(() => {
      if (rootCap.exitCode === null) rootCap.kill('SIGKILL');
    });
    while (!rootErr.includes('capturing')) {
      if (rootCap.exitCode !== null) throw new Error(rootErr);
      await sleep(20);
    }
    const mine = sockgenAs(s, 'member');
    const other = sockgenAs(s, 'other');
    const root = sockgenAs(s, 'root');
    const connect = (who: 'member' | 'other', text: string) =>
      execFileSync(path.join(s.tools, 'sockgen'), ['connect', sock, text], { ...(who === 'member' ? asMember(s) : asOther(s)), encoding: 'utf8' });
    const tag = `MARK-${process.pid}`;
    connect('member', `${tag}-member-asks`);
    connect('other', `${tag}-other-asks`);
    await sleep(1000);
    assert.equal(await live.stop(), 0, live.err());
    rootCap.kill('SIGTERM');
    await new Promise((r) => (rootCap.exitCode !== null ? r(null) : rootCap.on('exit', r)));
    const recs = records(file);
    // (sockgen's JSON on stdout is a send on a Unix socket too: count the MARK messages)
    const marks = (rs: typeof recs, pid: number) => rs.filter((r) => r.pid === pid && r.payload.toString().startsWith('MARK')).length;
    const pids = (pid: number) => marks(recs, pid);
    assert.equal(pids(mine.pid), 1, "the member's own message");
    assert.equal(pids(other.pid), 0, "another user's message");
    assert.equal(pids(root.pid), 0, "root's message");
    const texts = (rs: typeof recs) =>
      rs
        .map((r) => r.payload.toString())
        .filter((p) => p.startsWith(tag))
        .sort();
    // the member's question, and root's answer to it (sender root, peer the member)
    assert.deepEqual(texts(recs), [`${tag}-member-asks`, `${tag}-member-asks`]);
    const answer = recs.find((r) => r.payload.toString() === `${tag}-member-asks` && r.uid === 0);
    assert.ok(answer, "root's answer to the member");
    assert.deepEqual([...new Set(recs.map((r) => r.uid))].sort(), [0, s.member.uid].sort(), 'senders: the member, and root answering the member');
    const all = records(rootFile);
    // (socat hands the data to cat over socket pairs of its own: root sees those sends too)
    for (const who of ['member', 'other']) assert.ok(texts(all).filter((p) => p === `${tag}-${who}-asks`).length >= 2, `root sees ${who}'s exchange`);
    for (const g of [mine, other, root]) assert.equal(marks(all, g.pid), 1, `root sees pid ${g.pid}`);
  });

  it('ldd: the executable and the engine need only libc (with libm, libdl, libpthread), libstdc++, libgcc_s and the loader', (t) => {
    const s = prepare(t);
    if (!s) return;
    const allowed =
      /^(linux-vdso\.so\.1|libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|libstdc\+\+\.so\.6|libgcc_s\.so\.1|\/lib64\/ld-linux-x86-64\.so\.2|ld-linux-x86-64\.so\.2)$/;
    for (const f of [s.exe, path.join(s.dir, 'unixsock.node')]) {
      const libs = execFileSync('ldd', [f], { encoding: 'utf8' })
        .split('\n')
        .map((l) => l.trim().split(/\s+/)[0])
        .filter(Boolean);
      assert.ok(libs.includes('libc.so.6'), f);
      for (const l of libs) assert.match(l, allowed, `${f} needs ${l}`);
    }
  });
});
