// End-to-end: the built executable loads the real eBPF programs into this
// kernel and captures real programs; every record field is checked.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { HFLAG } from '../../src/link-header';
import { readPcapng } from './../helpers/pcapng-read';
import { EXE, ROOT, need, needBpf, records, sleep, sockgen, startCapture, tmpdir, waitForSocket, type Gen, type Rec } from '../helpers/harness';

const SYS = { write: 1, writev: 20, sendto: 44, sendmsg: 46, sendmmsg: 307, sendfile: 40 };
const STREAM = 1;
const DGRAM = 2;
const SEQPACKET = 5;

/** sockgen's JSON report reaches the test through a socketpair too (Node's stdio pipes): skip it. */
function traffic(recs: Rec[]): Rec[] {
  return recs.filter((r) => !r.payload.toString().startsWith('{"mode"'));
}

function mine(recs: Rec[], pid: number): Rec[] {
  return traffic(recs).filter((r) => r.pid === pid);
}

function commonFields(r: Rec, g: Gen) {
  assert.equal(r.pid, g.pid);
  assert.equal(r.tid, g.pid, 'single-threaded sender: tid == pid');
  assert.equal(r.uid, g.uid);
  assert.equal(r.gid, g.gid);
  assert.equal(r.comm, 'sockgen');
  assert.equal(r.version, 1);
  assert.ok(r.tsNs > 0n);
}

async function captureSockgen(t: TestContext, strategy: string) {
  const cap = await startCapture(t, ['--strategy', strategy, 'comm', 'sockgen']);
  const g = {
    stream: sockgen('stream-pair'),
    dgram: sockgen('dgram-abstract', `unixsock-test-${process.pid}`),
    seq: sockgen('seqpacket'),
    writev: sockgen('writev', '200'),
    sendmsg: sockgen('sendmsg-iov', '300'),
    mmsg: sockgen('sendmmsg', '5'),
    rights: sockgen('rights'),
    creds: sockgen('creds'),
    sendfile: sockgen('sendfile'),
  };
  const before = Date.now();
  const { code, stderr } = await cap.stop();
  assert.ok(Date.now() - before < 1500, 'SIGTERM ends the capture within a second');
  assert.equal(code, 0, stderr);
  return { g, recs: records(cap.file), file: cap.file, stderr };
}

function checkAll(g: Awaited<ReturnType<typeof captureSockgen>>['g'], recs: Rec[], strategy: number) {
  for (const r of recs) assert.equal(r.strategy, strategy, 'records carry the strategy that made them');

  // stream socketpair: parent write() -> child, child send() -> parent
  const s = g.stream;
  const sp = mine(recs, s.pid);
  assert.equal(sp.length, 1);
  commonFields(sp[0], s);
  assert.equal(sp[0].sockType, STREAM);
  assert.equal(sp[0].syscall, SYS.write);
  assert.equal(sp[0].payload.toString(), s.payload);
  assert.equal(sp[0].msgLen, s.payload.length);
  assert.equal(BigInt(s.ino), sp[0].ino);
  assert.equal(BigInt(s.peerIno), sp[0].peerIno);
  assert.equal(sp[0].localPath, undefined, 'socketpair ends are unnamed');
  assert.equal(sp[0].peerPath, undefined);
  assert.equal(sp[0].direction, undefined, 'no bound path: no direction flag');
  const reply = mine(recs, s.child);
  assert.equal(reply.length, 1);
  assert.equal(reply[0].payload.toString(), s.reply);
  assert.equal(reply[0].syscall, SYS.sendto, 'send() is sendto(2) on x86_64');
  assert.equal(reply[0].ino, BigInt(s.peerIno));
  assert.equal(reply[0].peerIno, BigInt(s.ino));
  // the child's peer is the parent, who wrote on the other end first
  assert.equal(reply[0].peerPid, s.pid);
  assert.equal(reply[0].peerComm, 'sockgen');

  // abstract dgram, unconnected sendto()
  const d = g.dgram;
  const dp = mine(recs, d.pid);
  assert.equal(dp.length, 1);
  commonFields(dp[0], d);
  assert.equal(dp[0].sockType, DGRAM);
  assert.equal(dp[0].syscall, SYS.sendto);
  assert.equal(dp[0].payload.toString(), d.payload);
  assert.deepEqual(dp[0].destPath, Buffer.concat([Buffer.from([0]), Buffer.from(d.name)]));
  assert.equal(dp[0].peerIno, 0n, 'unconnected: no peer socket');

  // seqpacket: three messages, boundaries kept
  const q = g.seq;
  const qp = mine(recs, q.pid);
  assert.deepEqual(qp.map((r) => r.payload.toString()), ['MARK-seqpacket-0', 'MARK-seqpacket-1', 'MARK-seqpacket-2']);
  for (const r of qp) assert.equal(r.sockType, SEQPACKET);

  // writev with 200 iovecs and sendmsg with 300: every byte, in order
  for (const [k, sys] of [['writev', SYS.writev], ['sendmsg', SYS.sendmsg]] as const) {
    const w = g[k];
    const wp = mine(recs, w.pid);
    assert.equal(wp.length, 1, k);
    assert.equal(wp[0].syscall, sys);
    assert.equal(wp[0].msgLen, w.len);
    assert.equal(wp[0].payload.toString(), w.payload, `${k}: payload of many iovecs`);
  }

  // sendmmsg: one record per message, each with its own bytes
  const m = g.mmsg;
  const mp = mine(recs, m.pid);
  assert.equal(m.count, 5);
  assert.deepEqual(mp.map((r) => r.payload.toString()), [0, 1, 2, 3, 4].map((i) => `MARK-mmsg-${i}`));
  for (const r of mp) {
    assert.equal(r.syscall, SYS.sendmmsg);
    assert.equal(r.sockType, DGRAM);
  }

  // SCM_RIGHTS and SCM_CREDENTIALS
  const rr = mine(recs, g.rights.pid);
  assert.equal(rr.length, 1);
  assert.equal(rr[0].payload.toString(), 'MARK-rights');
  assert.deepEqual(rr[0].rights, [0, 1]);
  assert.ok(rr[0].flags & HFLAG.HAS_CTRL);
  const cr = g.creds;
  const crr = mine(recs, cr.pid);
  assert.equal(crr.length, 1);
  assert.deepEqual(crr[0].creds, { pid: cr.pid, uid: cr.uid, gid: cr.gid });

  // sendfile: a record with the length, flagged unreadable, never a silent gap
  const sf = g.sendfile;
  const sfr = mine(recs, sf.pid);
  assert.equal(sfr.length, 1);
  assert.equal(sfr[0].msgLen, sf.len);
  assert.equal(sfr[0].payload.length, 0);
  assert.ok(sfr[0].flags & HFLAG.NO_PAYLOAD);
  assert.equal(sfr[0].syscall, SYS.sendfile);

  // nothing else slipped through the comm filter
  for (const r of recs) assert.ok(r.comm === 'sockgen' || r.peerComm === 'sockgen');
}

describe('capture engine on the real kernel', () => {
  it('captures every kind of send with sock_send_length (auto choice on this kernel)', async (t) => {
    if (!needBpf(t)) return;
    const { g, recs, file } = await captureSockgen(t, 'auto');
    checkAll(g, recs, 3);
    const c = readPcapng(file);
    assert.equal(c.blocks.at(-1)!.type, 5, 'the last block is the interface statistics block');
  });

  it('captures every kind of send with the syscall tracepoint strategy', async (t) => {
    if (!needBpf(t)) return;
    const { g, recs } = await captureSockgen(t, 'syscalls');
    checkAll(g, recs, 4);
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
    assert.equal(stream.length, resp.reduce((n, r) => n + r.msgLen, 0));
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
      const recs = traffic(records(cap.file)).filter((r) => r.comm === 'sockgen');
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
    const during = execFileSync('bpftool', ['prog', 'list'], { encoding: 'utf8' });
    assert.match(during, /send_length|sx_write/);
    await cap.stop();
    const after = execFileSync('bpftool', ['prog', 'list'], { encoding: 'utf8' });
    assert.doesNotMatch(after, /send_length|recv_length|sx_write|enter_sendmmsg/);
  });

  it('refuses strategies this kernel cannot attach with one sentence and exit 1', async (t) => {
    if (!needBpf(t)) return;
    for (const s of ['fentry', 'kprobe']) {
      const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
        const p = spawn(EXE, ['--strategy', s, '--duration', '1'], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        p.stderr.on('data', (d) => (err += d));
        p.on('exit', (code) => resolve({ code, err }));
      });
      assert.equal(r.code, 1);
      const lines = r.err.trim().split('\n');
      assert.equal(lines.length, 1, r.err);
      assert.match(lines[0], new RegExp(`^unixsock: attach strategy "${s}" does not work on this kernel: .+; use --strategy auto$`));
    }
  });
});
