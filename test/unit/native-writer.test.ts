// The addon's pcapng writer (native/pcapng_out.h, the capture's hot path)
// against the reference encoder in src/link-header.ts: the same kernel
// records must give byte-identical packets, whatever the payload size, the
// ancillary data, lost fragments or records of several threads interleaved.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { HFLAG, MAX_BLOCK, maxRecordPayload } from '../../src/link-header';
import { loadNative } from '../../src/native';
import { interfaceBlock, sectionHeaderBlock } from '../../src/pcapng';
import { FLAG } from '../../src/records';
import { REC, type KernelMessage } from '../helpers/kernel-records';
import { encodeLinkHeader } from '../helpers/link-encode';
import { control, message } from '../helpers/messages';
import { readPcapng } from '../helpers/pcapng-read';
import { batch, dataRecord, recordsOf } from '../helpers/raw-records';
import { viewAddressHex } from '../helpers/view';

const OFFSET = 1_700_000_000_000_000_000n;

interface Expected {
  data: Buffer;
  origLen: number;
  tsNs: bigint;
  direction: number;
}

function direction(m: KernelMessage): number {
  if (m.sockType !== 2 && m.localPath.length) return 1;
  return m.localPath.length || m.peerPath.length ? 2 : 0;
}

/** What the writer must produce for m (payload = the bytes that arrived). */
function expected(m: KernelMessage): Expected[] {
  const out: Expected[] = [];
  let off = 0;
  do {
    const hdr0 = encodeLinkHeader(m, off, false);
    const n = Math.min(maxRecordPayload(hdr0.length), m.payload.length - off);
    const more = off + n < m.payload.length;
    const hdr = more ? encodeLinkHeader(m, off, true) : hdr0;
    const origLen = hdr.length + (more ? n : Math.max(m.msgLen - off, n));
    out.push({ data: Buffer.concat([hdr, m.payload.subarray(off, off + n)]), origLen, tsNs: m.ts + OFFSET, direction: direction(m) });
    off += n;
  } while (off < m.payload.length);
  return out;
}

function write(records: Buffer[], identities?: { cgroupId: bigint; id: string; name: string; path?: string }[]) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unixsock-writer-'));
  const file = path.join(dir, 'w.pcapng');
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, sectionHeaderBlock({ hardware: 'test', os: 'test', application: 'test' }));
    fs.writeSync(fd, interfaceBlock({ linktype: 147, snaplen: MAX_BLOCK, name: 'unixsock', description: 'test' }));
    const counters = loadNative().writeRecords(fd, batch(records), OFFSET, identities);
    return { counters, capture: readPcapng(file) };
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function same(got: ReturnType<typeof write>['capture']['packets'], want: Expected[]) {
  assert.equal(got.length, want.length, 'packet count');
  want.forEach((w, i) => {
    assert.equal(Buffer.compare(got[i].data, w.data), 0, `packet ${i}: bytes`);
    assert.equal(got[i].origLen, w.origLen, `packet ${i}: original length`);
    assert.equal(got[i].tsNs, w.tsNs, `packet ${i}: timestamp`);
    assert.equal(got[i].flags ?? 0, w.direction, `packet ${i}: direction`);
  });
}

const bytes = (n: number, seed = 1) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

describe('native pcapng writer', () => {
  it('writes every kind of send exactly as the reference encoder', () => {
    const msgs: KernelMessage[] = [
      message(), // inline payload, peer path
      message({ tid: 2, ts: 2n, payload: Buffer.alloc(0), msgLen: 4096, flags: FLAG.NO_PAYLOAD, syscall: 40 }),
      message({ tid: 3, ts: 3n, payload: bytes(1000), msgLen: 1000, localPath: Buffer.from('/run/server.sock\0') }),
      message({ tid: 4, ts: 4n, payload: bytes(65), msgLen: 65, sockType: 2, peerPathIsDest: true, peerPath: Buffer.from('\0abstract-name') }),
      message({ tid: 5, ts: 5n, payload: bytes(200_000), msgLen: 200_000 }),
      message({ tid: 6, ts: 6n, payload: bytes(300_000, 7), msgLen: 300_000 }), // more than one record holds
      message({ tid: 7, ts: 7n, payload: bytes(100, 3), msgLen: 5000, flags: FLAG.TRUNCATED }), // snaplen
      message({ tid: 8, ts: 8n, localPath: Buffer.alloc(0), peerPath: Buffer.alloc(0), payload: bytes(64), msgLen: 64 }), // unnamed
    ];
    const recs = msgs.flatMap((m) => recordsOf(m, { fragment: 4096 }));
    const { counters, capture } = write(recs);
    same(capture.packets, msgs.flatMap(expected));
    assert.deepEqual(counters, { messages: 8, packets: 9, incomplete: 0, orphanRecords: 0, badRecords: 0, writeError: 0 });
  });

  it('turns ancillary data into TLVs, on the first record of a long send only', () => {
    const ctrl = control([3, 7, 9], { pid: 4242, uid: 1000, gid: 1001 });
    const small = message({ control: ctrl, flags: FLAG.HAS_CTRL });
    const big = message({ tid: 9, ts: 9n, control: control([5]), flags: FLAG.HAS_CTRL, payload: bytes(270_000), msgLen: 270_000 });
    const bad = Buffer.alloc(20);
    bad.writeBigUInt64LE(200n, 0); // cmsg_len beyond the buffer
    const malformed = message({ tid: 10, ts: 10n, control: bad, flags: FLAG.HAS_CTRL });
    const { capture } = write([...recordsOf(small), ...recordsOf(big), ...recordsOf(malformed)]);
    const want = [...expected(small), ...expected(big), ...expected(malformed)];
    same(capture.packets, want);
    assert.ok(want[3].data.readUInt16BE(4) & HFLAG.CTRL_MALFORMED);
  });

  it('keeps every block within what dumpcap reads live (262,144 bytes in all), and the pieces make the send', () => {
    // the longest header there is: both paths at their longest, 253 fds and credentials on the first record
    const longPath = Buffer.from('/' + 'p'.repeat(107));
    const big = message({
      tid: 11,
      ts: 11n,
      localPath: longPath,
      peerPath: longPath,
      control: control(
        Array.from({ length: 253 }, (_, i) => i),
        { pid: 1, uid: 2, gid: 3 },
      ),
      flags: FLAG.HAS_CTRL,
      payload: bytes(3 << 20, 9),
      msgLen: 3 << 20,
    });
    const unnamed = message({ tid: 12, ts: 12n, localPath: Buffer.alloc(0), peerPath: Buffer.alloc(0), payload: bytes(1 << 20, 4), msgLen: 1 << 20 });
    const { capture } = write([...recordsOf(big, { fragment: 65536 }), ...recordsOf(unnamed, { fragment: 65536 })]);
    same(capture.packets, [...expected(big), ...expected(unnamed)]);
    for (const b of capture.blocks) assert.ok(b.body.length + 12 <= MAX_BLOCK, `block of ${b.body.length + 12} bytes`);
    const pieces = capture.packets.map((p) => p.data).filter((d) => d.readUInt32BE(8) === big.pid && d.readUInt32BE(12) === 11);
    assert.ok(pieces.length >= 13);
    assert.equal(Buffer.compare(Buffer.concat(pieces.map((d) => d.subarray(d.readUInt16BE(2)))), big.payload), 0);
    assert.deepEqual(
      pieces.map((d) => Boolean(d.readUInt16BE(4) & HFLAG.MORE)),
      pieces.map((_, i) => i < pieces.length - 1),
    );
  });

  it('flags sends whose fragments the ring lost, and keeps threads apart', () => {
    const a = message({ tid: 100, ts: 100n, payload: bytes(10_000), msgLen: 10_000 });
    const b = message({ tid: 200, ts: 200n, payload: bytes(9000, 5), msgLen: 9000 });
    // interleave the two threads' records; a loses its last fragment
    const ra = recordsOf(a, { fragment: 4096, dropFragments: 1 });
    const rb = recordsOf(b, { fragment: 4096 });
    const mixed = [ra[0], rb[0], ra[1], rb[1], rb[2], ra[2], rb[3]];
    // a record whose MSG never came, and one of an unknown kind
    const orphan = dataRecord(REC.DATA, 999, 1n, bytes(10));
    const unknown = Buffer.from([77, 0, 0, 0]);
    const { counters, capture } = write([...mixed, orphan, unknown]);
    const lostA = { ...a, payload: a.payload.subarray(0, 8192), flags: a.flags | FLAG.LOST };
    // b completes first; a is emitted when the writer ends (its last fragment never comes)
    same(capture.packets, [...expected(b), ...expected(lostA)]);
    assert.deepEqual(counters, { messages: 2, packets: 2, incomplete: 1, orphanRecords: 1, badRecords: 1, writeError: 0 });
  });

  it("names the sender's and the peer's containers as their cgroups were resolved, and only those", () => {
    const id = 'c'.repeat(64);
    const peerId = 'd'.repeat(64);
    const web = message({ tid: 20, ts: 20n, cgroupId: 500n, peerCgroupId: 600n }); // both known, the peer without a name
    const host = message({ tid: 21, ts: 21n, cgroupId: 700n, peerCgroupId: 500n, payload: bytes(5000), msgLen: 5000 }); // host cgroup → web
    const unknown = message({ tid: 22, ts: 22n, cgroupId: 800n, peerCgroupId: 0n }); // not resolved yet: ids only
    const long = message({ tid: 23, ts: 23n, cgroupId: 900n }); // a hostile name is cut at 128 bytes
    const { capture } = write(
      [...recordsOf(web), ...recordsOf(host, { fragment: 4096 }), ...recordsOf(unknown), ...recordsOf(long)],
      [
        { cgroupId: 500n, id, name: 'web-1' },
        { cgroupId: 600n, id: peerId, name: '' },
        { cgroupId: 700n, id: '', name: '' },
        { cgroupId: 900n, id, name: 'n'.repeat(300) },
      ],
    );
    same(capture.packets, [
      ...expected({ ...web, container: { id, name: 'web-1' }, peerContainer: { id: peerId } }),
      ...expected({ ...host, peerContainer: { id, name: 'web-1' } }),
      ...expected(unknown),
      ...expected({ ...long, container: { id, name: 'n'.repeat(128) }, peerContainer: undefined }),
    ]);
  });

  it("names the stream view's address of every cgroup it met in name resolution blocks, bounded and escaped", () => {
    const id = 'e'.repeat(64);
    const path200 = '/user.slice/' + 'a'.repeat(180) + '/app.scope';
    const answers = [
      { cgroupId: 0x10n, id, name: 'web-1' }, // a container: its name
      { cgroupId: 0x11n, id, name: '' }, // its id only: the first 12 digits, as docker ps shows it
      { cgroupId: 0x12n, id: '', name: '', path: '/system.slice/ssh.service' }, // a host cgroup: its path
      { cgroupId: 0x13n, id, name: 'evil\x1b[31m\0x\u00e9 z' }, // terminal escapes, NUL, non-ASCII, a space: \xNN
      { cgroupId: 0x14n, id: '', name: '', path: path200 }, // too long: the path's end is kept
      { cgroupId: 0x15n, id, name: 'n'.repeat(100) }, // too long: the name's start is kept
      { cgroupId: 0x16n, id, name: 'never-seen' }, // answered, but no record of it: no name
      { cgroupId: 0x17n, id: '', name: '', path: '' }, // not found in the cgroup tree: named by its id
    ];
    const msgs = [
      message({ tid: 30, ts: 30n, cgroupId: 0x10n, peerCgroupId: 0x11n }),
      message({ tid: 31, ts: 31n, cgroupId: 0x12n, peerCgroupId: 0x13n }),
      message({ tid: 32, ts: 32n, cgroupId: 0x14n, peerCgroupId: 0x15n }),
      message({ tid: 33, ts: 33n, cgroupId: 0x17n, peerCgroupId: 0n }),
    ];
    const { capture } = write(
      msgs.flatMap((m) => recordsOf(m)),
      answers,
    );
    const names = Object.fromEntries([...capture.names].map(([a, n]) => [a, n.join('|')]));
    const want = {
      [viewAddressHex(0n)]: 'unknown',
      [viewAddressHex(0x10n)]: 'web-1',
      [viewAddressHex(0x11n)]: 'eeeeeeeeeeee',
      [viewAddressHex(0x12n)]: 'host:/system.slice/ssh.service',
      [viewAddressHex(0x13n)]: 'evil\\x1b[31m\\x00x\\xc3\\xa9\\x20z',
      [viewAddressHex(0x14n)]: '...' + `host:${path200}`.slice(-60),
      [viewAddressHex(0x15n)]: 'n'.repeat(60) + '...',
      [viewAddressHex(0x17n)]: 'cgroup:23',
    };
    assert.deepEqual(names, want);
    for (const n of Object.values(names)) assert.ok(n.length <= 63 && /^[\x21-\x7e]+$/.test(n), n);
    // the packets are what they were without names
    assert.equal(capture.packets.length, msgs.length);
  });

  it('a new send of a thread ends its unfinished one as lost', () => {
    const a = message({ tid: 1, ts: 1n, payload: bytes(5000), msgLen: 5000 });
    const b = message({ tid: 1, ts: 2n });
    const ra = recordsOf(a, { fragment: 4096 });
    const { capture } = write([ra[0], ra[1], ...recordsOf(b)]);
    same(capture.packets, [...expected({ ...a, payload: a.payload.subarray(0, 4096), flags: a.flags | FLAG.LOST }), ...expected(b)]);
  });
});
