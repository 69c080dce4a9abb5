import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { loadNative } from '../../src/native';
import { FLAG, MessageReader, conversationPath, formatPath, type UnixMessage } from '../../src/records';
import { tmpdir } from '../helpers/harness';
import { parseControl } from '../helpers/cmsg';
import { Assembler, REC, type KernelMessage } from '../helpers/kernel-records';
import { control, message } from '../helpers/messages';
import { batch, dataRecord, msgRecord, recordsOf } from '../helpers/raw-records';

/** A MSG record as the kernel lays it out (bpf/unixsock.h). */
function msgRec(o: { tid: number; ts: bigint; capLen: number; msgLen: number; flags?: number; ctrlLen?: number; local?: string; peer?: string }): Buffer {
  const m = message({
    tid: o.tid,
    ts: o.ts,
    msgLen: o.msgLen,
    flags: o.flags ?? 0,
    comm: 'proc',
    ino: 77n,
    localPath: Buffer.from(o.local ?? '', 'latin1'),
    peerPath: Buffer.from(o.peer ?? '', 'latin1'),
  });
  return msgRecord(m, o.capLen, o.ctrlLen ?? 0);
}

describe('record assembler', () => {
  it('joins fragments of interleaved sends by thread, in order', () => {
    const out: KernelMessage[] = [];
    const a = new Assembler((m) => out.push(m));
    a.push(
      batch([
        msgRec({ tid: 1, ts: 10n, capLen: 6, msgLen: 6 }),
        msgRec({ tid: 2, ts: 11n, capLen: 3, msgLen: 3, local: '/x' }),
        dataRecord(REC.DATA, 1, 10n, Buffer.from('abc')),
        dataRecord(REC.DATA, 2, 11n, Buffer.from('xyz')),
        dataRecord(REC.DATA, 1, 10n, Buffer.from('def')),
      ]),
    );
    assert.deepEqual(
      out.map((m) => [m.tid, m.payload.toString()]),
      [
        [2, 'xyz'],
        [1, 'abcdef'],
      ],
    );
    assert.equal(out[0].localPath.toString(), '/x');
    assert.equal(out[1].comm, 'proc');
    assert.equal(out[1].ino, 77n);
    assert.equal(a.stats.incomplete, 0);
  });

  it('waits for ancillary data, then parses it', () => {
    const out: KernelMessage[] = [];
    const a = new Assembler((m) => out.push(m));
    const c = control([5, 6]);
    a.push(batch([msgRec({ tid: 1, ts: 1n, capLen: 1, msgLen: 1, flags: FLAG.HAS_CTRL, ctrlLen: c.length }), dataRecord(REC.DATA, 1, 1n, Buffer.from('x'))]));
    assert.equal(out.length, 0);
    a.push(batch([dataRecord(REC.CTRL, 1, 1n, c)]));
    assert.equal(out.length, 1);
    assert.deepEqual(parseControl(out[0].control!).rights, [5, 6]);
  });

  it('marks a send whose fragments were lost, and counts orphans and bad records', () => {
    const out: KernelMessage[] = [];
    const a = new Assembler((m) => out.push(m));
    a.push(batch([msgRec({ tid: 1, ts: 1n, capLen: 10, msgLen: 10 }), dataRecord(REC.DATA, 1, 1n, Buffer.from('12345'))]));
    // the next send of the same thread arrives: the first lost its tail
    a.push(batch([msgRec({ tid: 1, ts: 2n, capLen: 0, msgLen: 0 }), dataRecord(REC.DATA, 9, 5n, Buffer.from('?')), Buffer.from([0xee, 0, 0, 0])]));
    assert.equal(out.length, 2);
    assert.ok(out[0].flags & FLAG.LOST);
    assert.equal(out[0].payload.toString(), '12345');
    assert.equal(a.stats.incomplete, 1);
    assert.equal(a.stats.orphanRecords, 1);
    assert.equal(a.stats.badRecords, 1);
    // a batch cut in the middle of a record is reported, not read past
    const cut = batch([msgRec({ tid: 3, ts: 3n, capLen: 0, msgLen: 0 })]).subarray(0, 100);
    a.push(cut);
    assert.equal(a.stats.badRecords, 2);
    a.push(batch([msgRec({ tid: 4, ts: 4n, capLen: 5, msgLen: 5 })]));
    a.flush();
    assert.ok(out.at(-1)!.flags & FLAG.LOST, 'flush emits what is still pending, marked');
  });
});

describe('paths and ancillary data', () => {
  it('formats abstract and filesystem paths', () => {
    assert.equal(formatPath(Buffer.from('/run/x.sock\0')), '/run/x.sock');
    assert.equal(formatPath(Buffer.from('\0/tmp/.X11-unix/X0')), '@/tmp/.X11-unix/X0');
    assert.equal(formatPath(Buffer.from([0, 0x41, 0x01, 0xff])), '@A\\x01\\xff');
    assert.equal(formatPath(Buffer.alloc(0)), '');
  });

  it('names a conversation by the server path', () => {
    const base = { localPath: Buffer.from('/srv'), peerPath: Buffer.from('/cli') } as UnixMessage;
    assert.equal(conversationPath({ ...base, sockType: 1 }).toString(), '/srv');
    assert.equal(conversationPath({ ...base, sockType: 2 }).toString(), '/cli');
  });

  it('parses SCM_RIGHTS and SCM_CREDENTIALS, and survives garbage', () => {
    const a = parseControl(control([0, 1, 2], { pid: 9, uid: 8, gid: 7 }));
    assert.deepEqual(a.rights, [0, 1, 2]);
    assert.deepEqual(a.creds, { pid: 9, uid: 8, gid: 7 });
    assert.equal(a.malformed, false);
    for (let i = 0; i < 500; i++) {
      const g = Buffer.from(Array.from({ length: (i * 7) % 64 }, (_, j) => (i * 31 + j * 17) & 0xff));
      parseControl(g); // must not throw
    }
  });
});

describe("the readable dump reads the addon writer's blocks", () => {
  it('gives each send back whole, as the oracle assembles its kernel records', (t) => {
    const msgs: KernelMessage[] = [
      message({ tid: 1, ts: 1n }),
      message({ tid: 2, ts: 2n, payload: Buffer.alloc(300_000, 7), msgLen: 300_000 }), // two records (MORE)
      message({ tid: 3, ts: 3n, control: control([4, 5], { pid: 9, uid: 8, gid: 7 }), flags: FLAG.HAS_CTRL }),
      message({ tid: 4, ts: 4n, sockType: 2, peerPathIsDest: true, peerPath: Buffer.from('\0dest'), localPath: Buffer.alloc(0) }),
      message({ tid: 5, ts: 5n, payload: Buffer.alloc(0), msgLen: 4096, flags: FLAG.NO_PAYLOAD }),
      message({ tid: 6, ts: 6n, payload: Buffer.alloc(10_000, 1), msgLen: 10_000 }),
    ];
    const records = msgs.flatMap((m, i) => recordsOf(m, { fragment: 4096, dropFragments: i === 5 ? 1 : 0 }));
    const oracle: KernelMessage[] = [];
    const asm = new Assembler((m) => oracle.push(m));
    asm.push(batch(records));
    asm.flush();

    const file = path.join(tmpdir(t), 'blocks');
    const fd = fs.openSync(file, 'w');
    loadNative().writeRecords(fd, batch(records), 0n);
    fs.closeSync(fd);
    const got: UnixMessage[] = [];
    const reader = new MessageReader((m) => got.push(m));
    reader.push(fs.readFileSync(file));
    assert.equal(reader.badBlocks, 0);

    assert.equal(got.length, oracle.length);
    for (const [i, m] of got.entries()) {
      const { control: raw, ...want } = oracle.find((o) => o.tid === m.tid)!;
      const anc = raw ? parseControl(raw) : undefined;
      assert.deepEqual(
        { ...m, rights: m.rights ?? [], creds: m.creds },
        { ...want, rights: anc?.rights ?? [], creds: anc?.creds },
        `message ${i} (tid ${m.tid})`,
      );
    }
    assert.ok(got.find((m) => m.tid === 6)!.flags & FLAG.LOST);
  });
});
