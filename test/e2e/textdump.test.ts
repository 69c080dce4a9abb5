// End-to-end: the readable dump (`unixsock` without -w), which runs the addon's
// pcapng writer into memory and reads whole messages back (src/records.ts).
// Real traffic from sockgen; every line is checked against what sockgen says
// it sent, the 300,000-byte send byte for byte from its hex dump.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it, type TestContext } from 'node:test';
import { EXE, SLOWDOWN, exited, needBpf, sockgen, type Gen } from '../helpers/harness';

interface Entry {
  head: string;
  comm: string;
  pid: number;
  peer: string;
  path: string;
  type: string;
  len: string;
  extra: string;
  body: string[];
}

const HEAD = /^\d\d:\d\d:\d\d\.\d{9} (\S+) (\d+) > (\S+ \d+|\?) (\S+) (\S+) len (\d+(?:\/\d+)?)(.*)$/;

/** The dump's lines: a header per message, then its bytes. */
function parse(out: string): Entry[] {
  const entries: Entry[] = [];
  for (const line of out.split('\n')) {
    const m = HEAD.exec(line);
    if (m) {
      entries.push({ head: line, comm: m[1], pid: Number(m[2]), peer: m[3], path: m[4], type: m[5], len: m[6], extra: m[7].trim(), body: [] });
    } else if (line && entries.length) entries.at(-1)!.body.push(line);
  }
  return entries;
}

/** The bytes of a --hex body, checking that the offsets run on without a gap. */
function unhex(body: string[]): Buffer {
  const bytes: number[] = [];
  for (const line of body) {
    const m = /^ {2}([0-9a-f]{8}) {2}((?:[0-9a-f]{2} ?)+)/.exec(line);
    assert.ok(m, `a hex dump line: ${line}`);
    assert.equal(parseInt(m[1], 16), bytes.length, 'hex dump offsets follow each other');
    for (const h of m[2].trim().split(' ')) bytes.push(parseInt(h, 16));
  }
  return Buffer.from(bytes);
}

/** Starts `unixsock ARGS...` writing the dump to a pipe, and waits until its probes are attached. */
async function startDump(t: TestContext, args: string[]) {
  const proc = spawn(EXE, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
  });
  const io = { out: '', err: '' };
  proc.stdout.on('data', (d) => (io.out += d));
  proc.stderr.on('data', (d) => (io.err += d));
  const deadline = Date.now() + 15000 * SLOWDOWN;
  while (!io.err.includes('capturing')) {
    if (proc.exitCode !== null) throw new Error(`unixsock exited early (${proc.exitCode}): ${io.err}`);
    if (Date.now() > deadline) throw new Error(`unixsock did not start: ${io.err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { proc, io };
}

async function dump(t: TestContext, args: string[], traffic: () => Gen[]) {
  const { proc, io } = await startDump(t, args);
  const gens = traffic();
  // the worker looks at the ring every few ms; give it a moment before the stop
  await new Promise((r) => setTimeout(r, 300 * SLOWDOWN));
  proc.kill('SIGTERM');
  const code = await exited(proc);
  assert.equal(code, 0, io.err);
  return { gens, entries: parse(io.out), err: io.err };
}

function one(entries: Entry[], what: string, pred: (e: Entry) => boolean): Entry {
  const found = entries.filter(pred);
  assert.equal(found.length, 1, `one line for ${what}: ${found.map((e) => e.head).join(' | ') || 'none'}`);
  return found[0];
}

describe('readable dump', () => {
  it('prints each message once, whole, with its sender, peer, path, type, length and ancillary data', async (t) => {
    if (!needBpf(t)) return;
    const name = `unixsock-dump-${process.pid}`;
    const { gens, entries, err } = await dump(t, ['--hex', 'comm', 'sockgen'], () => [
      sockgen('stream-pair'),
      sockgen('dgram-abstract', name),
      sockgen('rights'),
      sockgen('creds'),
      sockgen('sendfile'),
      sockgen('big', '300000'),
    ]);
    const [pair, dgram, rights, creds, sendfile, big] = gens;
    // sockgen's JSON report reaches this process through a pipe of Unix sockets too: not its traffic
    const from = (g: Gen) => entries.filter((e) => (e.pid === g.pid || (g.child && e.pid === g.child)) && e.peer !== `node ${process.pid}`);

    const hello = one(from(pair), 'the stream write', (e) => e.pid === pair.pid);
    assert.equal(hello.type, 'stream');
    assert.equal(hello.path, '(unnamed)');
    assert.equal(hello.len, String(pair.payload.length));
    assert.equal(unhex(hello.body).toString(), pair.payload);
    const reply = one(from(pair), 'the reply', (e) => e.pid === pair.child);
    assert.equal(reply.peer, `sockgen ${pair.pid}`, 'the reply goes to the parent');
    assert.equal(unhex(reply.body).toString(), pair.reply);

    const d = one(from(dgram), 'the datagram', () => true);
    assert.equal(d.type, 'dgram');
    assert.equal(d.path, `@${dgram.name}`, 'an abstract address is shown with @');
    assert.equal(unhex(d.body).toString(), dgram.payload);

    const r = one(from(rights), 'SCM_RIGHTS', () => true);
    assert.match(r.extra, /^SCM_RIGHTS \[\d+,\d+\]$/, 'two descriptors passed');
    assert.equal(unhex(r.body).toString(), rights.payload);
    const c = one(from(creds), 'SCM_CREDENTIALS', () => true);
    assert.equal(c.extra, `SCM_CREDENTIALS pid=${creds.pid} uid=${creds.uid} gid=${creds.gid}`);

    const s = one(from(sendfile), 'sendfile', () => true);
    assert.equal(s.len, `0/${sendfile.len}`, 'sendfile: the length, no bytes');
    assert.equal(s.extra, 'payload unreadable');
    assert.equal(s.body.length, 0);

    // one send larger than a pcapng block: split by the writer, whole again here
    const b = one(from(big), 'the 300,000-byte send', (e) => e.pid === big.pid);
    assert.equal(b.len, String(big.len));
    const bytes = unhex(b.body);
    assert.equal(bytes.length, big.len);
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] !== ((i * 131 + (i >> 12)) & 255)) assert.fail(`byte ${i} of the big send differs`);
    }
    assert.match(err, /unixsock: \d+ messages \(\d+ of \d+ bytes\) captured with \S+, 0 dropped/);
  });

  it('stops after -c N messages with exit 0', async (t) => {
    if (!needBpf(t)) return;
    const { proc, io } = await startDump(t, ['-c', '2', 'comm', 'sockgen']);
    const deadline = Date.now() + 30000 * SLOWDOWN;
    // traffic until it stops by itself
    while (proc.exitCode === null && Date.now() < deadline) {
      sockgen('seqpacket');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(await exited(proc), 0, io.err);
    assert.equal(parse(io.out).length, 2, io.out);
  });
});
