import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseControl } from '../../src/cmsg';
import { Assembler, FLAG, REC, conversationPath, formatPath, type UnixMessage } from '../../src/records';
import { control } from '../helpers/messages';

/** Builds raw records as the kernel lays them out (bpf/unixsock.h). */
function msgRecord(o: { tid: number; ts: bigint; capLen: number; msgLen: number; flags?: number; ctrlLen?: number; local?: string; peer?: string }): Buffer {
  const b = Buffer.alloc(REC.MSG_SIZE);
  b[0] = REC.MSG;
  b[1] = 1;
  b[2] = 3;
  b[3] = o.local?.length ?? 0;
  b[4] = o.peer?.length ?? 0;
  b.writeUInt16LE(o.flags ?? 0, 6);
  b.writeUInt32LE(1, 8);
  b.writeUInt32LE(100, 12);
  b.writeUInt32LE(o.tid, 16);
  b.writeUInt32LE(o.msgLen, 32);
  b.writeUInt32LE(o.capLen, 36);
  b.writeUInt32LE(o.ctrlLen ?? 0, 40);
  b.writeBigUInt64LE(o.ts, 48);
  b.writeBigUInt64LE(77n, 56);
  b.write('proc', 80);
  if (o.local) b.write(o.local, 112, 'latin1');
  if (o.peer) b.write(o.peer, 220, 'latin1');
  return b;
}

function dataRecord(kind: number, tid: number, ts: bigint, data: Buffer): Buffer {
  const b = Buffer.alloc(REC.DATA_HDR_SIZE + data.length);
  b[0] = kind;
  b.writeUInt32LE(data.length, 4);
  b.writeUInt32LE(tid, 8);
  b.writeBigUInt64LE(ts, 16);
  data.copy(b, REC.DATA_HDR_SIZE);
  return b;
}

function batch(recs: Buffer[]): Buffer {
  return Buffer.concat(
    recs.map((r) => {
      const h = Buffer.alloc(8);
      h.writeUInt32LE(r.length, 0);
      return Buffer.concat([h, r, Buffer.alloc(((r.length + 7) & ~7) - r.length)]);
    }),
  );
}

describe('record assembler', () => {
  it('joins fragments of interleaved sends by thread, in order', () => {
    const out: UnixMessage[] = [];
    const a = new Assembler((m) => out.push(m));
    a.push(
      batch([
        msgRecord({ tid: 1, ts: 10n, capLen: 6, msgLen: 6 }),
        msgRecord({ tid: 2, ts: 11n, capLen: 3, msgLen: 3, local: '/x' }),
        dataRecord(REC.DATA, 1, 10n, Buffer.from('abc')),
        dataRecord(REC.DATA, 2, 11n, Buffer.from('xyz')),
        dataRecord(REC.DATA, 1, 10n, Buffer.from('def')),
      ]),
    );
    assert.deepEqual(out.map((m) => [m.tid, m.payload.toString()]), [[2, 'xyz'], [1, 'abcdef']]);
    assert.equal(out[0].localPath.toString(), '/x');
    assert.equal(out[1].comm, 'proc');
    assert.equal(out[1].ino, 77n);
    assert.equal(a.stats.incomplete, 0);
  });

  it('waits for ancillary data, then parses it', () => {
    const out: UnixMessage[] = [];
    const a = new Assembler((m) => out.push(m));
    const c = control([5, 6]);
    a.push(batch([msgRecord({ tid: 1, ts: 1n, capLen: 1, msgLen: 1, flags: FLAG.HAS_CTRL, ctrlLen: c.length }), dataRecord(REC.DATA, 1, 1n, Buffer.from('x'))]));
    assert.equal(out.length, 0);
    a.push(batch([dataRecord(REC.CTRL, 1, 1n, c)]));
    assert.equal(out.length, 1);
    assert.deepEqual(parseControl(out[0].control!).rights, [5, 6]);
  });

  it('marks a send whose fragments were lost, and counts orphans and bad records', () => {
    const out: UnixMessage[] = [];
    const a = new Assembler((m) => out.push(m));
    a.push(batch([msgRecord({ tid: 1, ts: 1n, capLen: 10, msgLen: 10 }), dataRecord(REC.DATA, 1, 1n, Buffer.from('12345'))]));
    // the next send of the same thread arrives: the first lost its tail
    a.push(batch([msgRecord({ tid: 1, ts: 2n, capLen: 0, msgLen: 0 }), dataRecord(REC.DATA, 9, 5n, Buffer.from('?')), Buffer.from([0xee, 0, 0, 0])]));
    assert.equal(out.length, 2);
    assert.ok(out[0].flags & FLAG.LOST);
    assert.equal(out[0].payload.toString(), '12345');
    assert.equal(a.stats.incomplete, 1);
    assert.equal(a.stats.orphanRecords, 1);
    assert.equal(a.stats.badRecords, 1);
    // a batch cut in the middle of a record is reported, not read past
    const cut = batch([msgRecord({ tid: 3, ts: 3n, capLen: 0, msgLen: 0 })]).subarray(0, 100);
    a.push(cut);
    assert.equal(a.stats.badRecords, 2);
    a.push(batch([msgRecord({ tid: 4, ts: 4n, capLen: 5, msgLen: 5 })]));
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
