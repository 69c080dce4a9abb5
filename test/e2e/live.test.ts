// End-to-end: live captures read by Wireshark's own reader (dumpcap), as a
// user runs them: `unixsock -w - | tshark -i -` and the extcap fifo
// (`tshark -i unixsock`, the GUI's path). A multi-megabyte send must not end
// the capture (dumpcap refuses blocks over 262,144 bytes), and the pieces must
// decode back into the bytes sent. Also start-up: the capture is running when
// its first header byte appears, and a stop at any moment of start-up ends
// with exit 0 and a readable pcapng.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { HFLAG, MAX_BLOCK } from '../../src/link-header';
import { parseBlocks, readPcapng } from '../helpers/pcapng-read';
import { EXE, ROOT, exited, need, needBpf, records, sleep, sockgen, tmpdir, tshark, type Gen } from '../helpers/harness';
import { parseFolders } from '../helpers/wireshark';
import { viewAddressHex } from '../helpers/view';

const BIG = 4_000_000;

/** The bytes `sockgen big N` sends. */
function bigPattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + (i >> 12)) & 255;
  return b;
}

/** The records of sockgen's big send in file are within dumpcap's limit and make the send back; so does the Lua's stream. */
function checkBig(file: string, g: Gen): void {
  const want = bigPattern(BIG);
  const blocks = parseBlocks(fs.readFileSync(file));
  for (const b of blocks) assert.ok(b.body.length + 12 <= MAX_BLOCK, `a block of ${b.body.length + 12} bytes`);
  const pieces = records(file).filter((r) => r.pid === g.pid && r.msgLen === BIG);
  assert.ok(pieces.length >= Math.ceil(BIG / MAX_BLOCK), `${pieces.length} records`);
  assert.equal(Buffer.compare(Buffer.concat(pieces.map((r) => r.payload)), want), 0, 'the records hold the send, in order');
  assert.deepEqual(
    pieces.map((r) => r.offset),
    pieces.map((_, i) => pieces.slice(0, i).reduce((s, p) => s + p.payload.length, 0)),
  );
  assert.ok(pieces.slice(0, -1).every((r) => r.flags & HFLAG.MORE) && !(pieces.at(-1)!.flags & HFLAG.MORE));
  // decoded: the Lua's synthetic TCP stream of that connection, followed, is the send byte for byte
  const stream = tshark(['-r', file, '-Y', `unixsock.pid == ${g.pid} && unixsock.len == ${BIG}`, '-T', 'fields', '-e', 'tcp.stream'])
    .trim()
    .split('\n')[0];
  assert.match(stream, /^\d+$/);
  const follow = tshark(['-r', file, '-q', '-z', `follow,tcp,raw,${stream}`]);
  const hex = follow
    .split('\n')
    .filter((l) => /^[0-9a-f]+$/.test(l)) // the first speaker's lines (the reply side is indented)
    .join('');
  assert.equal(hex.length / 2, BIG, 'followed stream length');
  assert.equal(Buffer.compare(Buffer.from(hex, 'hex'), want), 0, 'followed stream bytes');
}

/** Waits until text(): string matches re, or the process exits, or ms pass. */
async function waitFor(what: string, text: () => string, re: RegExp, alive: () => boolean, ms = 30000): Promise<void> {
  const end = Date.now() + ms;
  while (!re.test(text())) {
    if (!alive()) throw new Error(`${what} exited early: ${text()}`);
    if (Date.now() > end) throw new Error(`${what}: no ${re} after ${ms} ms: ${text()}`);
    await sleep(20);
  }
}

function installed(t: TestContext) {
  const home = tmpdir(t);
  const env = { ...process.env, HOME: home, XDG_DATA_HOME: path.join(home, 'share') };
  execFileSync('bash', [path.join(ROOT, 'scripts/install-extcap.sh'), '--no-build'], { env, stdio: 'pipe' });
  return env;
}

describe("live capture through Wireshark's reader", () => {
  it('unixsock -w - | tshark -i -: a 4 MB send goes through whole, and decodes byte for byte', async (t) => {
    if (!needBpf(t) || !need(t, 'tshark')) return;
    const dir = tmpdir(t);
    const out = path.join(dir, 'pipe.pcapng');
    const ts = spawn('tshark', ['-i', '-', '-w', out], { stdio: ['pipe', 'ignore', 'pipe'] });
    let tsErr = '';
    ts.stderr.on('data', (d) => (tsErr += d));
    const u = spawn(EXE, ['-w', '-', 'comm', 'sockgen'], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => {
      for (const p of [u, ts]) if (p.exitCode === null) p.kill('SIGKILL');
    });
    u.stdout.pipe(ts.stdin);
    let err = '';
    u.stderr.on('data', (d) => (err += d));
    await waitFor(
      'unixsock',
      () => err,
      /capturing/,
      () => u.exitCode === null,
    );
    const g = await sendBig(out, () => ts.exitCode === null);
    u.kill('SIGTERM');
    assert.equal(await exited(u), 0, err);
    assert.equal(await exited(ts), 0, tsErr);
    assert.doesNotMatch(tsErr, /too long/);
    checkBig(out, g);
    assert.equal(readPcapng(out).blocks.at(-1)!.type, 5, 'the statistics block came through too');
  });

  it('tshark -i unixsock (the extcap fifo, as the GUI runs it): a 4 MB send goes through whole, and decodes byte for byte', async (t) => {
    if (!needBpf(t) || !need(t, 'tshark')) return;
    const env = installed(t);
    const dir = tmpdir(t);
    const out = path.join(dir, 'fifo.pcapng');
    const log = path.join(dir, 'log');
    const ts = spawn('tshark', ['-i', 'unixsock', '-o', 'extcap.unixsock.comm:sockgen', '-o', `extcap.unixsock.logfile:${log}`, '-w', out], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    t.after(() => {
      if (ts.exitCode === null) ts.kill('SIGKILL');
    });
    let tsErr = '';
    ts.stderr.on('data', (d) => (tsErr += d));
    const logText = () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '');
    await waitFor('tshark', logText, /capturing: probes attached/, () => ts.exitCode === null);
    const g = await sendBig(out, () => ts.exitCode === null);
    ts.kill('SIGINT');
    assert.equal(await exited(ts), 0, tsErr);
    assert.doesNotMatch(tsErr, /too long/);
    // dumpcap closes the fifo and sends SIGTERM; whichever unixsock sees first ends it
    assert.match(logText(), /stopping: (SIGTERM|reader gone)/, 'tshark stopped unixsock');
    checkBig(out, g);
    // the capture's name resolution blocks, written mid-capture, went through dumpcap into its file
    const { names } = readPcapng(out);
    assert.equal(names.get(viewAddressHex(0n))?.at(-1), 'unknown');
    const cg = records(out).find((r) => r.pid === g.pid)!.cgroupId;
    assert.ok(names.get(viewAddressHex(cg))?.length, `sockgen's cgroup ${cg} is named in the file`);
  });

  it('a fifo whose reader stops reading for a while: the burst waits in memory, nothing is dropped', async (t) => {
    if (!needBpf(t)) return;
    const dir = tmpdir(t);
    const fifo = path.join(dir, 'slow.fifo');
    execFileSync('mkfifo', [fifo]);
    // the reader end first (non-blocking), so that unixsock's open for writing returns
    const rfd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    t.after(() => fs.closeSync(rfd));
    const comm = `spill${process.pid % 100000}`;
    const MIB = 1 << 20;
    const SENDS = 48; // 48 MiB against a 16 MiB ring and a 1 MiB pipe
    const u = spawn(EXE, ['-w', fifo, '--ring-size', '16', 'comm', comm], { stdio: ['ignore', 'ignore', 'pipe'] });
    t.after(() => {
      if (u.exitCode === null) u.kill('SIGKILL');
    });
    let err = '';
    u.stderr.on('data', (d) => (err += d));
    await waitFor(
      'unixsock',
      () => err,
      /capturing/,
      () => u.exitCode === null,
    );
    // paced (~25 MB/s: the ring holds 0.6 s of it, for a shared machine's pauses); only the pipe stands still
    const script = `
import ctypes, os, socket, time
ctypes.CDLL(None).prctl(15, b'${comm}', 0, 0, 0)
a, b = socket.socketpair()
if os.fork() == 0:
    a.close()
    while b.recv(1 << 20): pass
    os._exit(0)
b.close()
for i in range(${SENDS}):
    a.sendall(bytes([i]) * ${MIB})
    time.sleep(0.04)
a.close()
os.wait()`;
    const sender = spawn('python3', ['-c', script], { stdio: 'ignore' });
    const sent = exited(sender);
    // the reader takes nothing until the sender is done
    assert.equal(await sent, 0, 'the sender');
    u.kill('SIGTERM');
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(1 << 20);
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(rfd, buf);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        await sleep(5);
        continue;
      }
      if (n === 0) break; // unixsock closed its end: everything is here
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
    assert.equal(await exited(u), 0, err);
    assert.match(err, / 0 dropped/, err);
    const file = path.join(dir, 'got.pcapng');
    fs.writeFileSync(file, Buffer.concat(chunks));
    const mine = records(file).filter((r) => r.comm === comm);
    const bytes = Buffer.concat(mine.map((r) => r.payload));
    assert.equal(bytes.length, SENDS * MIB, 'every byte sent');
    for (let i = 0; i < SENDS; i++)
      assert.ok(
        bytes.subarray(i * MIB, (i + 1) * MIB).every((x) => x === i),
        `send ${i} in order`,
      );
  });
});

/** Whether a capture file that is still being written holds a record of pid yet (its whole blocks only). */
/** The 4 MB send, then a small one: everything is in the file once the small one is. */
async function sendBig(out: string, alive: () => boolean): Promise<Gen> {
  const g = sockgen('big', String(BIG));
  const after = sockgen('stream-pair');
  await waitFor('tshark', () => String(holds(out, after.pid)), /true/, alive);
  return g;
}

function holds(file: string, pid: number): boolean {
  try {
    const buf = fs.readFileSync(file);
    let o = 0;
    while (o + 12 <= buf.length) {
      const len = buf.readUInt32LE(o + 4);
      if (len < 12 || o + len > buf.length) break;
      o += len;
    }
    return records(readPcapng(buf.subarray(0, o))).some((r) => r.pid === pid);
  } catch {
    return false;
  }
}

/** Starts unixsock as Wireshark does (--capture --fifo); collects what it writes. */
function extcapCapture(t: TestContext, dir: string, extra: string[] = []) {
  const fifo = path.join(dir, `fifo-${Math.random().toString(36).slice(2)}`);
  execFileSync('mkfifo', [fifo]);
  const p = spawn(EXE, ['--capture', '--extcap-interface', 'unixsock', '--fifo', fifo, '--extcap-capture-filter', 'comm sockgen', ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.after(() => {
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  });
  let err = '';
  p.stderr.on('data', (d) => (err += d));
  const chunks: Buffer[] = [];
  let firstByte: (() => void) | undefined;
  const gotFirst = new Promise<void>((r) => (firstByte = r));
  let opened: (() => void) | undefined;
  const isOpen = new Promise<void>((r) => (opened = r));
  // the reader's open returns once unixsock has opened the fifo: its own code runs by then
  const rs = fs.createReadStream(fifo);
  rs.on('open', () => opened!());
  rs.on('data', (d) => {
    chunks.push(d as Buffer);
    firstByte!();
  });
  const closed = new Promise<void>((r) => rs.on('close', r));
  return {
    proc: p,
    isOpen,
    gotFirst,
    stderr: () => err,
    async end(): Promise<{ code: number | null; signal: string | null; data: Buffer }> {
      const [code, signal] = await new Promise<[number | null, string | null]>((r) => {
        if (p.exitCode !== null || p.signalCode !== null) r([p.exitCode, p.signalCode]);
        else p.once('exit', (c, s) => r([c, s]));
      });
      await closed;
      return { code, signal, data: Buffer.concat(chunks) };
    },
  };
}

describe('start-up', () => {
  it('traffic sent the moment the first header byte reaches the fifo is all in the capture', async (t) => {
    if (!needBpf(t)) return;
    const dir = tmpdir(t);
    const c = extcapCapture(t, dir);
    await c.gotFirst;
    const g = sockgen('burst', '500'); // no settling pause in this mode
    await sleep(300);
    c.proc.kill('SIGTERM');
    const { code, data } = await c.end();
    assert.equal(code, 0, c.stderr());
    // (sockgen's JSON on stdout is captured too: Node gives children socket pairs)
    const got = records(readPcapng(data))
      .filter((r) => r.pid === g.pid && r.payload.toString().startsWith('MARK-burst-'))
      .map((r) => r.payload.toString())
      .join('')
      .match(/MARK-burst-\d{6}/g);
    const want = Array.from({ length: 500 }, (_, i) => `MARK-burst-${String(i).padStart(6, '0')}`);
    assert.equal(got?.length, want.length, 'messages captured');
    assert.deepEqual(got, want);
  });

  it('SIGTERM or SIGINT at any moment of start-up: exit 0, nothing on stderr, a whole pcapng ending with its statistics block', async (t) => {
    if (!needBpf(t)) return;
    const dir = tmpdir(t);
    // from the moment unixsock's code runs (it has opened the fifo) until it captures
    const delays = [0, 1, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500];
    let sawCapturing = false;
    for (const [i, ms] of delays.entries()) {
      const c = extcapCapture(t, dir, ['--log-file', path.join(dir, `log${ms}`)]);
      await c.isOpen;
      await sleep(ms);
      c.proc.kill(i % 2 ? 'SIGINT' : 'SIGTERM');
      const { code, signal, data } = await c.end();
      const what = `stop ${ms} ms after the fifo opened`;
      assert.deepEqual([code, signal], [0, null], `${what}: ${c.stderr()}`);
      assert.equal(c.stderr(), '', what);
      const cap = readPcapng(data);
      assert.equal(cap.linktype, 147, what);
      assert.equal(cap.blocks.at(-1)!.type, 5, `${what}: the statistics block ends it`);
      if (/capturing: probes attached/.test(fs.readFileSync(path.join(dir, `log${ms}`), 'utf8'))) sawCapturing = true;
    }
    assert.ok(sawCapturing, 'the schedule reached a running capture');
  });
});

/** A port nobody listens on now. */
async function freePort(): Promise<number> {
  const net = await import('node:net');
  const srv = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe('remote capture', () => {
  it("the README's sshdump command, run for real: Wireshark's sshdump over ssh to 127.0.0.1, decoded with the Lua", async (t) => {
    if (!needBpf(t) || !need(t, 'tshark', 'ssh-keygen')) return;
    const sshd = '/usr/sbin/sshd';
    if (!fs.existsSync(sshd)) {
      if (process.env.CI === 'true') throw new Error('sshd is not installed (scripts/deps.sh installs openssh-server)');
      t.skip('sshd is not installed');
      return;
    }
    // sshdump is in this Wireshark's global extcap folder (4.0/4.4: /usr/lib/…/extcap, 4.6: /usr/libexec/…)
    const folders = parseFolders(execFileSync('tshark', ['-G', 'folders'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    const global = folders.get('Global Extcap path') ?? folders.get('Extcap path');
    assert.ok(global && fs.existsSync(path.join(global, 'sshdump')), `sshdump in ${global}`);
    // the command as the README gives it
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const block = /```sh\n(tshark -i sshdump[\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(block, 'the README has the sshdump command');
    const opts = [...block.matchAll(/-o (?:"([^"]+)"|(\S+))/g)].map((m) => {
      const o = m[1] ?? m[2];
      return [o.slice(0, o.indexOf(':')), o.slice(o.indexOf(':') + 1)] as const;
    });
    const opt = new Map(opts);
    assert.equal(opt.get('extcap.sshdump.remotecapturecommandselect'), 'other');
    const command = opt.get('extcap.sshdump.remotecapturecommand');
    assert.equal(command, "unixsock -w - -q 'comm psql'");

    const dir = tmpdir(t);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'host')]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'user')]);
    fs.copyFileSync(path.join(dir, 'user.pub'), path.join(dir, 'authorized_keys'));
    const port = await freePort();
    fs.writeFileSync(
      path.join(dir, 'sshd_config'),
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${dir}/host`,
        `AuthorizedKeysFile ${dir}/authorized_keys`,
        `PidFile ${dir}/sshd.pid`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        '',
      ].join('\n'),
    );
    fs.mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege separation folder
    const d = spawn(sshd, ['-D', '-e', '-f', path.join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let dErr = '';
    d.stderr.on('data', (x) => (dErr += x));
    t.after(() => d.kill());
    await waitFor(
      'sshd',
      () => dErr,
      /Server listening on 127\.0\.0\.1/,
      () => d.exitCode === null,
    );

    const home = tmpdir(t); // sshdump's known_hosts and Wireshark's preferences: nothing of the machine's
    const out = path.join(dir, 'remote.pcapng');
    const log = path.join(dir, 'sshdump.log');
    // the README's command with this host, this test's key, the checkout's unixsock, and sockgen for psql
    const remote = command.replace(/^unixsock /, `${EXE} `).replace("'comm psql'", "'comm sockgen'");
    const args = ['-i', 'sshdump'];
    for (const [k, v] of opts) {
      const value =
        k === 'extcap.sshdump.remotehost'
          ? '127.0.0.1'
          : k === 'extcap.sshdump.remoteusername'
            ? 'root'
            : k === 'extcap.sshdump.sshkey'
              ? path.join(dir, 'user')
              : k === 'extcap.sshdump.remotecapturecommand'
                ? remote
                : v;
      args.push('-o', `${k}:${value}`);
    }
    args.push('-o', `extcap.sshdump.remoteport:${port}`, '-o', `extcap.sshdump.logfile:${log}`, '-o', 'extcap.sshdump.loglevel:debug', '-w', out);
    const ts = spawn('tshark', args, { env: { ...process.env, HOME: home }, stdio: ['ignore', 'ignore', 'pipe'] });
    t.after(() => {
      if (ts.exitCode === null) ts.kill('SIGKILL');
    });
    let tsErr = '';
    ts.stderr.on('data', (x) => (tsErr += x));
    // the remote unixsock's section header has reached tshark's file: it captures
    await waitFor(
      'tshark',
      () => (fs.existsSync(out) && fs.statSync(out).size > 0 ? 'started' : ''),
      /started/,
      () => ts.exitCode === null,
    );
    const g = sockgen('stream-pair');
    await waitFor(
      'tshark',
      () => String(holds(out, g.pid)),
      /true/,
      () => ts.exitCode === null,
    );
    ts.kill('SIGINT');
    assert.equal(await exited(ts), 0, tsErr);
    assert.match(fs.readFileSync(log, 'utf8'), new RegExp(`Running: ${EXE.replace(/[.]/g, '\\.')} -w - -q 'comm sockgen'`));
    // decoded by the Lua: sender, peer and payload of both directions
    const lines = tshark([
      '-r',
      out,
      '-Y',
      `unixsock.pid == ${g.pid} || unixsock.pid == ${g.child}`,
      '-T',
      'fields',
      '-e',
      'unixsock.comm',
      '-e',
      'unixsock.pid',
      '-e',
      'tcp.payload',
    ])
      .trim()
      .split('\n');
    const seen = lines.map((l) => l.split('\t')).map(([comm, pid, hex]) => `${comm} ${pid} ${Buffer.from(hex.replace(/:/g, ''), 'hex').toString()}`);
    assert.ok(seen.includes(`sockgen ${g.pid} ${g.payload}`), seen.join('\n'));
    assert.ok(seen.includes(`sockgen ${g.child} ${g.reply}`), seen.join('\n'));
  });
});
