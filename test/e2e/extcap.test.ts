// End-to-end: the built executable as Wireshark's extcap and as a command-line
// tool: protocol answers, install into a Wireshark config, tshark live
// capture, SIGTERM handling and every error sentence a user can meet.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { readPcapng } from '../helpers/pcapng-read';
import { EXE, ROOT, SLOWDOWN, SOCKGEN, exeForOtherUsers, exited, need, needBpf, records, sleep, sockgen, tmpdir, waitForSocket } from '../helpers/harness';
import { predict, readKernel, thisKernel } from '../helpers/kernel';

/** The strategy auto must pick on this kernel, from kfeatures' reading (test/helpers/kernel.ts). */
function autoHere(): string {
  const k = thisKernel();
  if (!k.auto) throw new Error(`kfeatures found no usable strategy on ${k.reading.release}`);
  return k.auto;
}

function run(args: string[], opts: { user?: string; exe?: string } = {}) {
  const cmd = opts.user ? 'runuser' : EXE;
  const argv = opts.user ? ['-u', opts.user, '--', opts.exe ?? EXE, ...args] : args;
  const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 30000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('extcap protocol', () => {
  it('offers the listening sockets in the dialog, with the process holding each, and again on reload', async (t) => {
    if (!fs.existsSync(EXE)) throw new Error('extcap/unixsock is not built');
    const dir = tmpdir(t);
    const sock = path.join(dir, 'picker.sock');
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(sock, r));
    t.after(() => server.close());
    const label = `value {arg=0}{value=${sock}}{display=${sock} (node ${process.pid})}{default=false}{enabled=true}`;
    // 4.6: the path field itself is the list (editable: a typed path still works)
    const cfg = execFileSync(EXE, ['--extcap-config', '--extcap-interface', 'unixsock', '--extcap-version', '4.6.1'], { encoding: 'utf8' });
    assert.match(cfg, /\{call=--path\}\{display=Socket path\}\{type=editselector\}/);
    assert.ok(cfg.split('\n').includes(label), cfg);
    const reload = execFileSync(EXE, ['--extcap-config', '--extcap-interface', 'unixsock', '--extcap-version', '4.6.1', '--extcap-reload-option', 'path'], {
      encoding: 'utf8',
    });
    assert.ok(reload.split('\n').includes(label));
    assert.ok(
      reload.split('\n').every((l) => l === '' || l.startsWith('value {arg=0}')),
      'only the values on reload',
    );
    // 4.0: a list beside the text field, passed as --socket (a path filter)
    const old = execFileSync(EXE, ['--extcap-config', '--extcap-interface', 'unixsock', '--extcap-version', '4.0'], { encoding: 'utf8' });
    assert.ok(old.split('\n').includes(label.replace('{arg=0}', '{arg=1}')), old);
    server.close();
    await sleep(50);
    const gone = execFileSync(EXE, ['--extcap-config', '--extcap-interface', 'unixsock', '--extcap-version', '4.6.1', '--extcap-reload-option', 'path'], {
      encoding: 'utf8',
    });
    assert.ok(!gone.includes(sock), 'a closed listener is gone from the list');
  });

  it('answers --extcap-interfaces, --extcap-dlts and --extcap-version line by line', () => {
    if (!fs.existsSync(EXE)) throw new Error('extcap/unixsock is not built');
    const v = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    const i = run(['--extcap-interfaces', '--extcap-version=4.0']);
    assert.equal(i.code, 0);
    assert.equal(i.err, '');
    assert.deepEqual(i.out.split('\n'), [`extcap {version=${v}}{help=file://${ROOT}/README.md}`, 'interface {value=unixsock}{display=Unix sockets}', '']);
    const d = run(['--extcap-dlts', '--extcap-interface', 'unixsock']);
    assert.equal(d.code, 0);
    assert.equal(d.out, 'dlt {number=147}{name=USER0}{display=Unix socket messages (unixsock)}\n');
    const bad = run(['--extcap-dlts', '--extcap-interface', 'eth0']);
    assert.equal(bad.code, 2);
    assert.equal(bad.err, 'unixsock: unknown extcap interface "eth0" (this tool offers "unixsock")\n');
  });

  it("Wireshark's queries (answered before the parser is loaded) answer as the parser does", () => {
    // each query as Wireshark sends it (fast path, src/extcap.ts extcapQuery)
    // and with a word that only the parser takes (-q): the same output
    for (const q of [
      ['--extcap-interfaces', '--extcap-version=4.6.1'],
      ['--extcap-interfaces'],
      ['--extcap-dlts', '--extcap-interface', 'unixsock'],
      ['--extcap-interface=unixsock', '--extcap-dlts', '--extcap-version', '4.0'],
      ['--extcap-interface', 'unixsock', '--extcap-config'],
      ['--extcap-config'],
    ]) {
      const fast = run(q);
      const parsed = run([...q, '-q']);
      assert.equal(fast.code, 0, q.join(' '));
      assert.equal(fast.err, '', q.join(' '));
      assert.ok(fast.out.length > 0, q.join(' '));
      assert.deepEqual(fast, parsed, q.join(' '));
    }
    // shapes the fast path leaves to the parser keep the parser's answers
    assert.equal(run(['--extcap-dlts', '--extcap-interface', 'eth0']).code, 2);
    assert.equal(run(['--extcap-interfaces', '--bogus']).code, 2);
    assert.equal(run(['--extcap-interfaces', '--help']).out, run(['--help']).out);
  });

  it('--extcap-cleanup-postkill (Wireshark 4.6): exit 0, nothing printed', () => {
    for (const args of [['--extcap-cleanup-postkill'], ['--extcap-cleanup-postkill', '--extcap-interface', 'unixsock']]) {
      const r = run(args);
      assert.deepEqual([r.code, r.out, r.err], [0, '', ''], args.join(' '));
    }
  });

  it('describes the config dialog: every option, grouped, with tooltips and validation', () => {
    const c = run(['--extcap-interface', 'unixsock', '--extcap-config']);
    assert.equal(c.code, 0);
    const args = c.out.split('\n').filter((l) => l.startsWith('arg '));
    const calls = args.map((l) => /\{call=--([^}]+)\}/.exec(l)![1]);
    // no --extcap-version: what 4.0 takes (the socket picker as a list of its own beside the path)
    assert.deepEqual(calls, [
      'path',
      'socket',
      'file',
      'pid',
      'comm',
      'container',
      'types',
      'pidns',
      'netns',
      'snaplen',
      'ring-size',
      'strategy',
      'linktype',
      'log-file',
      'debug',
    ]);
    for (const [n, l] of args.entries()) {
      assert.match(
        l,
        new RegExp(
          `^arg \\{number=${n}\\}\\{call=--[a-z-]+\\}\\{display=[^}]+\\}\\{type=(string|fileselect|unsigned|multicheck|selector|boolflag)\\}\\{tooltip=[^}]+\\}.*\\{group=(Filter|Namespaces|Capture|Debug)\\}$`,
        ),
      );
    }
    const values = c.out.split('\n').filter((l) => l.startsWith('value '));
    assert.ok(values.includes(`value {arg=${calls.indexOf('strategy')}}{value=auto}{display=Automatic}{default=true}{enabled=true}`));
    // without {enabled=true} Wireshark shows the socket-type boxes read-only
    assert.ok(
      values.includes(`value {arg=${calls.indexOf('types')}}{value=seqpacket}{display=Sequenced packets (SOCK_SEQPACKET)}{default=false}{enabled=true}`),
    );
    for (const v of values) assert.match(v, /\{enabled=true\}$/, v);
    assert.doesNotMatch(c.out, /editselector/, 'Wireshark 4.0 rejects editselector');
  });

  it('refuses just past every range the dialog gives, with one sentence and exit 2 (the dialog stops there too)', () => {
    const c = run(['--extcap-interface', 'unixsock', '--extcap-config']);
    const ranges = [...c.out.matchAll(/^arg \{number=\d+\}\{call=--([a-z-]+)\}.*\{range=(\d+),(\d+)\}/gm)];
    assert.deepEqual(
      ranges.map((m) => m[1]),
      ['pid', 'snaplen', 'linktype'],
    );
    for (const [, call, lo, hi] of ranges) {
      const past = [String(Number(hi) + 1), ...(Number(lo) > 0 ? [String(Number(lo) - 1)] : [])];
      for (const v of past) {
        const r = run(['-w', '/dev/null', `--${call}`, v]);
        assert.equal(r.code, 2, `--${call} ${v}: ${r.err}`);
        assert.match(r.err, /^unixsock: [^\n]+\n$/, `--${call} ${v}`);
      }
    }
  });

  it('validates capture filters the way Wireshark asks (output = error, none = valid)', () => {
    const ok = run(['--extcap-interface', 'unixsock', '--extcap-capture-filter', 'path /run/docker.sock and not comm dockerd']);
    assert.deepEqual([ok.code, ok.out, ok.err], [0, '', '']);
    // a namespace file is opened only at the start: as the user types, its form is what is checked
    const typing = run(['--extcap-interface', 'unixsock', '--extcap-capture-filter', 'netns /run/netns/not-yet']);
    assert.deepEqual([typing.code, typing.out, typing.err], [0, '', '']);
    const cases: [string, RegExp][] = [
      [
        'port 80',
        /^capture filter: unknown term "port" \(use path, file, pid, comm, type, stream, dgram, seqpacket, container, cgroup, pidns, netns, and, not\)$/,
      ],
      ['pidns net:[4026531840]', /^pidns filter: "net:\[4026531840\]" is a net namespace, not a pid one$/],
      ['pid x', /^pid filter: "x" is not a process id$/],
      ['path /a or path /b', /^capture filter: expected "and" before "or"/],
      ['type stream and not type stream', /^type filter: no socket type is left to capture$/],
      ['file /nonexistent/x', /^file filter: cannot stat "\/nonexistent\/x": ENOENT$/],
      ['path "unterminated', /^capture filter: unterminated quote$/],
    ];
    for (const [f, re] of cases) {
      const r = run(['--extcap-interface', 'unixsock', '--extcap-capture-filter', f]);
      assert.equal(r.code, 0, f);
      assert.equal(r.out.split('\n').length, 2, `one line for ${f}`);
      assert.match(r.out.trim(), re, f);
    }
  });
});

describe('Wireshark integration', () => {
  it('install-extcap.sh puts the README where the Help button of the interface points; --uninstall removes it', (t) => {
    if (!need(t, 'tshark')) return;
    const home = tmpdir(t);
    const env = { ...process.env, HOME: home, XDG_DATA_HOME: path.join(home, 'share') };
    const out = execFileSync('bash', [path.join(ROOT, 'scripts/install-extcap.sh'), '--no-build'], { env, encoding: 'utf8' });
    const exe = /^installed (\S+\/unixsock)$/m.exec(out)?.[1];
    assert.ok(exe, out);
    const readme = path.join(home, 'share/unixsock/README.md');
    assert.equal(fs.readFileSync(readme, 'utf8'), fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
    const i = execFileSync(exe, ['--extcap-interfaces', '--extcap-version=4.0'], { env, encoding: 'utf8' });
    assert.match(i, new RegExp(`^extcap \\{version=[^}]+\\}\\{help=file://${readme.replace(/[.]/g, '\\.')}\\}$`, 'm'));
    const un = execFileSync('bash', [path.join(ROOT, 'scripts/install-extcap.sh'), '--uninstall'], { env, encoding: 'utf8' });
    assert.match(un, new RegExp(`^removed ${readme.replace(/[.]/g, '\\.')}$`, 'm'));
    assert.ok(!fs.existsSync(readme));
  });

  it('tshark -i unixsock -a duration captures real traffic with -o extcap.unixsock.* options', async (t) => {
    if (!needBpf(t) || !need(t, 'tshark', 'socat')) return;
    const home = tmpdir(t);
    const env = { ...process.env, HOME: home, XDG_DATA_HOME: path.join(home, 'share') };
    execFileSync('bash', [path.join(ROOT, 'scripts/install-extcap.sh'), '--no-build'], { env, stdio: 'pipe' });
    const dir = tmpdir(t);
    const sock = path.join(dir, 'live.sock');
    const srv = spawn('socat', [`UNIX-LISTEN:${sock},fork`, 'SYSTEM:echo live-pong'], { stdio: 'ignore' });
    t.after(() => srv.kill());
    await waitForSocket(sock);
    const out = path.join(dir, 'live.pcapng');
    const log = path.join(dir, 'log');
    const ts = spawn(
      'tshark',
      [
        '-i',
        'unixsock',
        '-a',
        'duration:5',
        '-o',
        `extcap.unixsock.path:${sock}`,
        '-o',
        'extcap.unixsock.ringsize:16',
        '-o',
        `extcap.unixsock.logfile:${log}`,
        '-w',
        out,
      ],
      {
        env,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let err = '';
    ts.stderr.on('data', (d) => (err += d));
    // the duration counts from the capture's start, which Wireshark learns from the first header: the probes are attached by then
    while (!/capturing: probes attached/.test(fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '')) {
      assert.equal(ts.exitCode, null, err);
      await sleep(20);
    }
    // what each client received: the server's pong is sent only if socat relays it before it sees
    // the client's shutdown(SHUT_WR) (it then gets EPIPE: no send, nothing to capture)
    const answered = [0, 1, 2].map(
      (i) => (JSON.parse(execFileSync(SOCKGEN, ['connect', sock, `live-ping-${i}`], { encoding: 'utf8' })) as { len: number }).len,
    );
    const code = await exited(ts);
    assert.equal(code, 0, err);
    const recs = records(out);
    const pings = recs.filter((r) => r.payload.toString().startsWith('live-ping-'));
    assert.deepEqual(pings.map((r) => r.payload.toString()).sort(), ['live-ping-0', 'live-ping-1', 'live-ping-2']);
    for (const r of pings) {
      assert.equal(r.comm, 'sockgen');
      assert.equal(r.peerPath?.toString().replace(/\0+$/, ''), sock);
    }
    const pongs = recs.filter((r) => r.payload.toString() === 'live-pong\n');
    assert.equal(pongs.length, answered.filter((n) => n === 'live-pong\n'.length).length, `every pong a client received (${answered.join(', ')} bytes)`);
    const cap = readPcapng(out);
    assert.equal(cap.linktype, 147);
    assert.equal(cap.idbOptions.get(9)?.[0][0], 9, 'nanosecond timestamps');
    assert.match(cap.shbOptions.get(4)?.[0].toString() ?? '', /^unixsock \d/);
    assert.equal(cap.idbOptions.get(2)?.[0].toString(), 'unixsock');
  });

  it('SIGTERM mid-capture leaves a valid pcapng whose last block is the statistics block', async (t) => {
    if (!needBpf(t)) return;
    const dir = tmpdir(t);
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const reader = spawn('sh', ['-c', `cat '${fifo}' > '${dir}/out.pcapng'`]);
    const p = spawn(
      EXE,
      ['--capture', '--extcap-interface', 'unixsock', '--fifo', fifo, '--extcap-capture-filter', 'comm sockgen', '--log-file', path.join(dir, 'log')],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    // until the probes are attached (the log says so): a fixed 1.5 s was too short under load (received 0)
    const logFile = path.join(dir, 'log');
    for (const end = Date.now() + 15000 * SLOWDOWN; !(fs.existsSync(logFile) && fs.readFileSync(logFile, 'utf8').includes('capturing:'));) {
      assert.ok(Date.now() < end && p.exitCode === null, `the capture did not attach: ${err}`);
      await sleep(50);
    }
    const g = sockgen('stream-pair');
    await sleep(300);
    const t0 = Date.now();
    p.kill('SIGTERM');
    const code = await exited(p);
    const took = Date.now() - t0;
    await exited(reader);
    assert.equal(code, 0);
    assert.equal(err, '', 'nothing on stderr in extcap mode');
    assert.ok(took < 1000, `stopped in ${took} ms`);
    const cap = readPcapng(path.join(dir, 'out.pcapng'));
    assert.equal(cap.blocks.at(-1)!.type, 5);
    const isb = cap.isb!;
    assert.ok(isb.get(4)![0].readBigUInt64LE(0) >= 2n, 'received count');
    assert.equal(isb.get(5)![0].readBigUInt64LE(0), 0n, 'nothing dropped');
    assert.equal(cap.idbOptions.get(11)?.[0].subarray(1).toString(), 'comm sockgen', 'the filter in if_filter');
    assert.ok(records(cap).some((r) => r.pid === g.pid && r.payload.toString() === g.payload));
    const log = fs.readFileSync(path.join(dir, 'log'), 'utf8');
    assert.match(log, new RegExp(`strategy ${autoHere()}: attached`));
    assert.match(log, /stopping: SIGTERM/);
  });
});

describe('--fifo that is not a fifo', () => {
  it('a missing path is created as a plain file holding the capture; a symlink or an existing file is refused', async (t) => {
    if (!needBpf(t)) return;
    const dir = tmpdir(t);
    const file = path.join(dir, 'made.pcapng');
    const p = spawn(
      EXE,
      ['--capture', '--extcap-interface', 'unixsock', '--fifo', file, '--extcap-capture-filter', 'comm sockgen', '--log-file', path.join(dir, 'log')],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    while (!/capturing: probes attached/.test(fs.existsSync(path.join(dir, 'log')) ? fs.readFileSync(path.join(dir, 'log'), 'utf8') : '')) {
      assert.equal(p.exitCode, null, err);
      await sleep(20);
    }
    const g = sockgen('stream-pair');
    await sleep(300);
    p.kill('SIGTERM');
    assert.equal(await exited(p), 0, err);
    const st = fs.lstatSync(file);
    assert.ok(st.isFile());
    assert.equal(st.mode & 0o777, 0o600);
    const cap = readPcapng(file);
    assert.ok(records(cap).some((r) => r.pid === g.pid && r.payload.toString() === g.payload));
    assert.equal(cap.blocks.at(-1)!.type, 5);
    // a symlink planted at the path is not followed; an existing file is neither truncated nor written
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, 'keep me');
    fs.symlinkSync(victim, path.join(dir, 'link'));
    for (const [target, why] of [
      [path.join(dir, 'link'), 'ELOOP'],
      [victim, 'not a fifo'],
    ]) {
      const r = run(['--capture', '--extcap-interface', 'unixsock', '--fifo', target]);
      assert.equal(r.code, 2, target);
      assert.equal(r.err, `unixsock: cannot open fifo "${target}": ${why}\n`);
    }
    assert.equal(fs.readFileSync(victim, 'utf8'), 'keep me');
  });
});

describe('reader gone', () => {
  it('-w - stops within a second, exit 0, when the reader closes the pipe while nothing is captured', async (t) => {
    if (!needBpf(t)) return;
    const p = spawn(EXE, ['-w', '-', 'comm', 'nothing-matches'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    // the section header arrives first; then the reader goes away
    await new Promise((r) => p.stdout.once('data', r));
    while (!err.includes('capturing')) await sleep(20);
    const t0 = Date.now();
    p.stdout.destroy();
    const code = await exited(p);
    assert.equal(code, 0, err);
    assert.ok(Date.now() - t0 < 1000, `stopped in ${Date.now() - t0} ms`);
    assert.match(err, new RegExp(`unixsock: 0 messages \\(0 of 0 bytes\\) captured with ${autoHere()}, 0 dropped`));
  });
});

describe('errors a user can meet', () => {
  it('bad option values: one sentence, exit 2, no stack trace', () => {
    const cases: [string[], string][] = [
      [['--ring-size', '3'], 'unixsock: ring buffer size: 3 MiB is not a power of two between 1 and 1024'],
      [['--linktype', '999'], 'unixsock: --linktype: expected a whole number from 147 to 162'],
      [['--strategy', 'magic'], 'unixsock: --strategy: "magic" is not one of auto, fentry, kprobe, sock_send_length, syscalls'],
      [['--pid', 'abc'], 'unixsock: pid filter: "abc" is not a process id'],
      [['--comm', 'a-very-long-command-name'], 'unixsock: comm filter: "a-very-long-command-name" must be 1 to 15 bytes (the kernel keeps 15)'],
      [['--path', 'x'.repeat(200)], `unixsock: path filter: "${'x'.repeat(200)}" is longer than a socket path can be (107 bytes)`],
      [['--snaplen', '-1'], 'unixsock: --snaplen: expected a whole number from 0 to 1073741824'],
      [['--bogus'], 'unixsock: Unknown argument: bogus'],
      [['-w', '/nonexistent-dir/x.pcapng'], 'unixsock: cannot write "/nonexistent-dir/x.pcapng": ENOENT'],
      [['--capture', '--extcap-interface', 'unixsock'], 'unixsock: --capture needs --fifo PATH'],
      [['--capture', '--extcap-interface', 'unixsock', '--fifo', '/nonexistent-dir/fifo'], 'unixsock: cannot open fifo "/nonexistent-dir/fifo": ENOENT'],
    ];
    for (const [args, msg] of cases) {
      const r = run(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.equal(r.err, msg + '\n');
    }
  });

  it('a bad value in extcap mode opens the fifo first, so Wireshark shows the error instead of hanging', async (t) => {
    const dir = tmpdir(t);
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
    const r = spawnSync(EXE, ['--capture', '--extcap-interface', 'unixsock', '--fifo', fifo, '--ring-size', '5'], { encoding: 'utf8', timeout: 10000 });
    await exited(reader);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, 'unixsock: ring buffer size: 5 MiB is not a power of two between 1 and 1024\n');
  });

  it('not root and no capabilities: says how to fix it', (t) => {
    if (!needBpf(t) || !need(t, 'runuser')) return;
    const r = run(['--duration', '1'], { user: 'nobody', exe: exeForOtherUsers(t) });
    assert.equal(r.code, 1);
    assert.equal(
      r.err,
      'unixsock: permission denied loading eBPF programs: run as root, or install with scripts/install-extcap.sh so the executable has cap_bpf,cap_perfmon and your user is in the wireshark group\n',
    );
  });

  it('disk full: says so, exits 1, and what was written is whole blocks', (t) => {
    if (!needBpf(t)) return;
    const r = spawnSync(EXE, ['-w', '/dev/full', '--duration', '1'], { encoding: 'utf8', timeout: 20000 });
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'unixsock: /dev/full: disk full: the capture stops here\n');
  });

  it('disk full in the middle of a capture: exit 1, the file keeps only whole blocks', async (t) => {
    if (!needBpf(t)) return;
    const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'unixsock-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt]);
    t.after(() => {
      spawnSync('umount', ['-l', mnt]);
      fs.rmdirSync(mnt);
    });
    const file = path.join(mnt, 'cap.pcapng');
    const p = spawn(EXE, ['-w', file, 'comm', 'sockgen'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    while (!err.includes('capturing') && p.exitCode === null) await sleep(20);
    for (let i = 0; i < 80 && p.exitCode === null; i++) {
      execFileSync(SOCKGEN, ['writev', '1000']);
      await sleep(20);
    }
    const code = await exited(p);
    assert.equal(code, 1);
    assert.match(err, new RegExp(`^unixsock: ${file.replace(/[.]/g, '\\.')}: disk full: the capture stops here$`, 'm'));
    const cap = readPcapng(file);
    assert.ok(cap.packets.length > 0, 'what fit is readable');
  });

  it('no BTF, tracefs missing without the right to mount it, ring buffer too small: each says what to do', async (t) => {
    if (!needBpf(t) || !need(t, 'unshare', 'capsh')) return;
    // a kernel without BTF, as a mount namespace that hides /sys/kernel/btf
    const btf = spawnSync('unshare', ['-m', 'sh', '-c', `mount -t tmpfs none /sys/kernel/btf && exec '${EXE}' --duration 1`], {
      encoding: 'utf8',
      timeout: 20000,
    });
    assert.equal(btf.status, 1);
    assert.equal(
      btf.stderr,
      'unixsock: this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): unixsock needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian, Ubuntu and Fedora kernels have it)\n',
    );
    // tracefs hidden and no CAP_SYS_ADMIN to mount it: the syscall strategy says why it cannot run,
    // while the automatic choice still captures (only sendmmsg payloads depend on tracefs there)
    // hidden: wherever tracefs or debugfs is mounted here, and the places the capture would mount it
    const mounts = fs
      .readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' '))
      .filter((f) => f[2] === 'tracefs' || f[2] === 'debugfs')
      .map((f) => f[1]);
    const hide = [...new Set([...mounts, '/sys/kernel/tracing', '/sys/kernel/debug'])].map((m) => `mount -t tmpfs none ${m} 2>/dev/null;`).join(' ');
    const tr = spawnSync('unshare', ['-m', 'sh', '-c', `${hide} exec capsh --drop=cap_sys_admin -- -c "exec '${EXE}' --strategy syscalls --duration 1"`], {
      encoding: 'utf8',
      timeout: 20000,
    });
    assert.equal(tr.status, 1);
    assert.equal(
      tr.stderr,
      'unixsock: attach strategy "syscalls" does not work on this kernel: tracefs is not mounted and mounting it failed: Operation not permitted; use --strategy auto\n',
    );
    const dir = tmpdir(t);
    const log = path.join(dir, 'log');
    const auto = spawnSync(
      'unshare',
      ['-m', 'sh', '-c', `${hide} exec capsh --drop=cap_sys_admin -- -c "exec '${EXE}' -q --duration 1 --log-file '${log}' comm unixsock-none"`],
      {
        encoding: 'utf8',
        timeout: 20000,
      },
    );
    assert.equal(auto.status, 0, auto.stderr);
    // without tracefs the syscall tracepoints are gone: kfeatures' reading with them taken away
    const hidden = predict(readKernel(), { tracefs: false }).auto;
    assert.ok(hidden, 'this kernel has a strategy that needs no tracefs');
    const logged = fs.readFileSync(log, 'utf8');
    assert.match(logged, new RegExp(`strategy ${hidden}: attached`));
    // sock_send_length reads sendmmsg payloads through a syscall tracepoint: it says what is lost
    if (hidden === 'sock_send_length') assert.match(logged, /strategy sock_send_length: attached \(.*sendmmsg payloads unreadable: tracefs is not mounted/);
    // a 1 MiB ring against 64 KiB messages: drops are counted and reported, in the summary and the file
    const file = path.join(dir, 'small.pcapng');
    const p = spawn(EXE, ['-w', file, '--ring-size', '1', 'comm', 'unixbench'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    while (!err.includes('capturing') && p.exitCode === null) await sleep(20);
    execFileSync(path.join(ROOT, 'build/unixbench'), ['stream', '65536', '3000'], { stdio: 'ignore' });
    await sleep(200);
    p.kill('SIGTERM');
    assert.equal(await exited(p), 0);
    const m = /unixsock: (\d+) messages .* (\d+) dropped \(raise --ring-size\)$/m.exec(err);
    assert.ok(m, err);
    assert.ok(Number(m[2]) > 0);
    const cap = readPcapng(file);
    assert.equal(cap.isb!.get(5)![0].readBigUInt64LE(0), BigInt(m[2]), 'the statistics block carries the drops');
  });
});
