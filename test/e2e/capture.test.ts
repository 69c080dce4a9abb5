// End-to-end: the built executable loads the real eBPF programs into this
// kernel and captures real programs; every record field is checked.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { HFLAG } from '../../src/link-header';
import { readPcapng } from './../helpers/pcapng-read';
import { checkAll, GENERATORS, STREAM, traffic, type Generated } from '../helpers/checks';
import { EXE, ROOT, SLOWDOWN, exited, need, needBpf, records, sleep, sockgen, startCapture, tmpdir, waitForSocket, type Rec } from '../helpers/harness';
import { RECORD_SYSCALLS, STRATEGY_NUMBER, thisKernel } from '../helpers/kernel';

/** The GENERATORS traffic, each sockgen run in turn. */
function generate(tag: string): Generated {
  return Object.fromEntries(
    Object.entries(GENERATORS).map(([k, args]) => [k, sockgen(...args, ...(k === 'dgram' ? [`unixsock-${tag}-${process.pid}`] : []))]),
  ) as unknown as Generated;
}

/** What auto must pick here, from kfeatures' reading of this kernel (test/helpers/kernel.ts). */
function expectedAuto() {
  const k = thisKernel();
  assert.ok(k.auto, `kfeatures found no usable strategy on ${k.reading.release}: ${JSON.stringify(k.missing)}`);
  return { auto: k.auto, number: STRATEGY_NUMBER[k.auto], sys: RECORD_SYSCALLS };
}

async function captureSockgen(t: TestContext, strategy: string) {
  const cap = await startCapture(t, ['--strategy', strategy, 'comm', 'sockgen']);
  const g = generate('test');
  const before = Date.now();
  const { code, stderr } = await cap.stop();
  assert.ok(Date.now() - before < 1500 * SLOWDOWN, 'SIGTERM ends the capture within a second');
  assert.equal(code, 0, stderr);
  return { g, recs: records(cap.file), file: cap.file, stderr };
}

describe('capture engine on the real kernel', () => {
  it('auto picks the best strategy this kernel allows and captures every kind of send', async (t) => {
    if (!needBpf(t)) return;
    const want = expectedAuto();
    const { g, recs, file, stderr } = await captureSockgen(t, 'auto');
    assert.match(stderr, new RegExp(`captured with ${want.auto},`), `kfeatures predicts ${want.auto}`);
    checkAll(g, recs, want.number, want.sys);
    const c = readPcapng(file);
    assert.equal(c.blocks.at(-1)!.type, 5, 'the last block is the interface statistics block');
  });

  it('captures curl against an HTTP server on a Unix socket, every byte of a 1 MiB multi-write response', async (t) => {
    if (!needBpf(t) || !need(t, 'curl')) return;
    const dir = tmpdir(t);
    const sock = path.join(dir, 'http.sock');
    const body = Buffer.alloc(1 << 20);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 10)) & 0xff;
    fs.writeFileSync(path.join(dir, 'body.bin'), body);
    const server = spawn(process.execPath, [path.join(ROOT, 'test', 'helpers', 'http-server.js'), sock, path.join(dir, 'body.bin')], {
      stdio: 'ignore',
    });
    t.after(() => server.kill());
    await waitForSocket(sock);
    const cap = await startCapture(t, ['path', sock]);
    const got = execFileSync('curl', ['-s', '--unix-socket', sock, 'http://unixsock/big'], { maxBuffer: 1 << 22 });
    assert.equal(Buffer.compare(got, body), 0);
    await sleep(100);
    const { code, stderr } = await cap.stop();
    assert.equal(code, 0, stderr);
    const recs = records(cap.file);
    const req = recs.filter((r) => r.comm === 'curl');
    assert.ok(req.length >= 1);
    assert.match(req[0].payload.toString(), /^GET \/big HTTP\/1\.1\r\n/);
    assert.equal(req[0].peerComm, 'node');
    assert.equal(req[0].peerPid, server.pid);
    assert.deepEqual(req[0].peerPath?.toString().replace(/\0+$/, ''), sock);
    assert.equal(req[0].direction, 2, 'client to server is outbound');
    const st = fs.statSync(sock);
    assert.equal(req[0].pathIno, BigInt(st.ino));
    const resp = recs.filter((r) => r.pid === server.pid);
    assert.ok(resp.length >= 2, 'the response took several writes');
    for (const r of resp) {
      assert.equal(r.peerPid, req[0].pid);
      assert.equal(r.peerComm, 'curl');
      assert.equal(r.direction, 1, 'server to client is inbound');
      assert.equal(r.flags & (HFLAG.LOST | HFLAG.TRUNCATED), 0);
    }
    const stream = Buffer.concat(resp.map((r) => r.payload));
    const sep = stream.indexOf('\r\n\r\n');
    assert.ok(sep > 0);
    assert.equal(Buffer.compare(stream.subarray(sep + 4), body), 0, 'every byte of the body, in order');
    assert.equal(
      stream.length,
      resp.reduce((n, r) => n + r.msgLen, 0),
    );
  });

  it('filters by socket file inode through a symlink, by path prefix, pid and type', async (t) => {
    if (!needBpf(t)) return;
    const dir = tmpdir(t);
    const sock = path.join(dir, 's.sock');
    const other = path.join(dir, 'other.sock');
    const link = path.join(dir, 'link-to-s');
    const srv = spawn('socat', [`UNIX-LISTEN:${sock},fork`, 'SYSTEM:cat >/dev/null'], { stdio: 'ignore' });
    const srv2 = spawn('socat', [`UNIX-LISTEN:${other},fork`, 'SYSTEM:cat >/dev/null'], { stdio: 'ignore' });
    t.after(() => {
      srv.kill();
      srv2.kill();
    });
    await waitForSocket(sock);
    await waitForSocket(other);
    fs.symlinkSync(sock, link);
    const runs: [string[], (r: Rec) => boolean, string][] = [
      [['file', link], (r) => r.payload.toString().startsWith('to-s'), 'inode filter via symlink'],
      [['path', path.join(dir, 'o*')], (r) => r.payload.toString().startsWith('to-other'), 'path prefix'],
      [['not', 'path', sock, 'and', 'comm', 'sockgen'], (r) => r.payload.toString().startsWith('to-other'), 'negated path'],
    ];
    for (const [filter, ok, what] of runs) {
      const cap = await startCapture(t, filter);
      // connect through a relative path from the directory: the inode filter must not care
      execFileSync(path.join(ROOT, 'build', 'sockgen'), ['connect', 's.sock', 'to-s'], { cwd: dir });
      execFileSync(path.join(ROOT, 'build', 'sockgen'), ['connect', other, 'to-other']);
      await sleep(100);
      const { code } = await cap.stop();
      assert.equal(code, 0);
      // this test's own sends ("to-…"): other tests' sockgen runs pass "comm sockgen" too (live-ping-16 once)
      const recs = traffic(records(cap.file)).filter((r) => r.comm === 'sockgen' && r.payload.toString().startsWith('to-'));
      assert.ok(recs.length >= 1, `${what}: captured something`);
      for (const r of recs) assert.ok(ok(r), `${what}: ${r.payload.toString()} should have been filtered out`);
    }
    // pid: only the stream-pair's own process (as sender or peer)
    const cap = await startCapture(t, ['--types', 'stream', 'comm', 'sockgen']);
    const a = sockgen('stream-pair');
    sockgen('seqpacket');
    await sleep(50);
    await cap.stop();
    const recs = records(cap.file);
    assert.ok(recs.some((r) => r.pid === a.pid));
    for (const r of recs) assert.equal(r.sockType, STREAM, 'type filter keeps only stream');
    const cap2 = await startCapture(t, ['pid', String(process.pid + 0)]);
    sockgen('stream-pair');
    await sleep(50);
    await cap2.stop();
    assert.equal(traffic(records(cap2.file)).filter((r) => r.comm === 'sockgen').length, 0, 'pid filter excludes other processes');
  });

  it('detaches every program when the capture ends', async (t) => {
    if (!needBpf(t) || !need(t, 'bpftool')) return;
    const cap = await startCapture(t, []);
    // only this capture's programs (other captures may run on the machine): the prog_id of each
    // BPF program file descriptor it holds
    const fdDir = `/proc/${cap.proc.pid}/fd`;
    const held = fs
      .readdirSync(fdDir)
      .filter((fd) => fs.readlinkSync(path.join(fdDir, fd)) === 'anon_inode:bpf-prog')
      .map((fd) => Number(/^prog_id:\s*(\d+)/m.exec(fs.readFileSync(`/proc/${cap.proc.pid}/fdinfo/${fd}`, 'utf8'))?.[1]));
    const loaded = () => new Set((JSON.parse(execFileSync('bpftool', ['prog', 'list', '-j'], { encoding: 'utf8' })) as { id: number }[]).map((p) => p.id));
    const before = loaded();
    assert.ok(held.length >= 1, 'the capture holds its programs');
    for (const id of held) assert.ok(before.has(id), `program ${id} is loaded`);
    await cap.stop();
    const after = loaded();
    assert.deepEqual(
      held.filter((id) => after.has(id)),
      [],
      'none of them is still loaded',
    );
  });
  it('keeps every byte of a 52 MB capture written to a file (write-behind, the ring read in steps)', async (t) => {
    if (!needBpf(t) || !need(t, 'python3')) return;
    const count = 800;
    const cap = await startCapture(t, ['--ring-size', '256', 'comm', 'bigsender']);
    // one process sends count 64 KiB messages over a socket pair, each a different rotation of 0..255
    const script = `
import os, socket, ctypes
ctypes.CDLL(None).prctl(15, b"bigsender", 0, 0, 0)
base = bytes(range(256)) * 256
a, b = socket.socketpair()
if os.fork() == 0:
    a.close()
    left = ${count} * 65536
    while left > 0:
        left -= len(b.recv(1 << 20))
    os._exit(0)
b.close()
for i in range(${count}):
    k = (i * 37) % 256
    a.sendall(base[k:] + base[:k])
a.close()
os.wait()
print(os.getpid())`;
    const sender = Number(execFileSync('python3', ['-c', script], { encoding: 'utf8' }).trim());
    await sleep(200);
    const { code, stderr } = await cap.stop();
    assert.equal(code, 0, stderr);
    assert.match(stderr, / 0 dropped/);
    assert.ok(fs.statSync(cap.file).size > 52e6, 'the file holds the whole capture');
    // (its stdout to this test is a socket pair too: the peer tells them apart)
    const sent = traffic(records(cap.file)).filter((r) => r.pid === sender && r.sockType === STREAM && r.peerComm === 'bigsender');
    const base = Buffer.alloc(65536);
    for (let i = 0; i < base.length; i++) base[i] = i & 0xff;
    const want = Buffer.concat(
      Array.from({ length: count }, (_, i) => {
        const k = (i * 37) % 256;
        return Buffer.concat([base.subarray(k), base.subarray(0, k)]);
      }),
    );
    const got = Buffer.concat(sent.map((r) => r.payload));
    assert.equal(got.length, want.length);
    assert.equal(Buffer.compare(got, want), 0, 'every byte, in order');
    assert.equal(readPcapng(cap.file).blocks.at(-1)!.type, 5, 'closed with the statistics block');
  });

  it('as Wireshark starts it (extcap, fifo): traffic sent the moment the first bytes reach the fifo is all captured', async (t) => {
    if (!needBpf(t)) return;
    const want = expectedAuto();
    const dir = tmpdir(t);
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const p = spawn(EXE, ['--capture', '--extcap-interface', 'unixsock', '--fifo', fifo, '--extcap-capture-filter', 'comm sockgen'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    t.after(() => {
      if (p.exitCode === null) p.kill('SIGKILL');
    });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    // Wireshark reads the fifo as soon as the capture opens it; a user's traffic can come at
    // any moment after the section header is there: the first bytes must mean "attached"
    const chunks: Buffer[] = [];
    let g: Generated | undefined;
    const drained = new Promise<void>((resolve, reject) => {
      const rs = fs.createReadStream(fifo);
      rs.on('data', (d) => {
        chunks.push(d as Buffer);
        g ??= generate('extcap');
      });
      rs.on('end', resolve);
      rs.on('error', reject);
    });
    while (!g && p.exitCode === null) await sleep(10);
    assert.ok(g, `the capture ended before writing anything: ${err}`);
    await sleep(200);
    p.kill('SIGTERM');
    assert.equal(await exited(p), 0, `exit code (null: killed by the signal, before its handler was set) ${err}`);
    await drained;
    const cap = readPcapng(Buffer.concat(chunks));
    assert.equal(cap.blocks.at(-1)!.type, 5, 'closed with the statistics block');
    checkAll(g, records(cap), want.number, want.sys);
  });
});
