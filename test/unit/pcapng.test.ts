import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { interfaceBlock, sectionHeaderBlock, statsBlock } from '../../src/pcapng';
import { parseBlocks, readPcapng } from '../helpers/pcapng-read';
import { PacketWriter, packetBlock } from '../helpers/pcapng-write';

describe('pcapng writer', () => {
  it('writes SHB, IDB, EPBs and an ISB that read back exactly', (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unixsock-unit-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'x.pcapng');
    const fd = fs.openSync(file, 'w');
    const w = new PacketWriter(fd, file);
    w.write(sectionHeaderBlock({ hardware: 'hw', os: 'Linux', application: 'unixsock test' }));
    w.write(interfaceBlock({ linktype: 148, snaplen: 262144, name: 'unixsock', description: 'd', filter: 'pid 1' }));
    const ts = 1_700_000_000_123_456_789n;
    w.packet({ tsNs: ts, data: Buffer.from('abc'), origLen: 10, direction: 2 });
    w.packet({ tsNs: ts + 1n, data: Buffer.alloc(0), origLen: 0 });
    w.write(statsBlock({ tsNs: ts + 2n, startNs: ts - 5n, endNs: ts + 2n, received: 7n, dropped: 1n, delivered: 2n }));
    w.flush();
    fs.closeSync(fd);
    const c = readPcapng(file);
    assert.deepEqual(
      c.blocks.map((b) => b.type),
      [0x0a0d0d0a, 1, 6, 6, 5],
    );
    assert.equal(c.shbOptions.get(4)![0].toString(), 'unixsock test');
    assert.equal(c.linktype, 148);
    assert.equal(c.snaplen, 262144);
    assert.equal(c.idbOptions.get(9)![0][0], 9);
    assert.deepEqual(c.idbOptions.get(11)![0], Buffer.from('\0pid 1'));
    assert.equal(c.packets[0].tsNs, ts);
    assert.equal(c.packets[0].data.toString(), 'abc');
    assert.equal(c.packets[0].origLen, 10);
    assert.equal(c.packets[0].flags, 2);
    assert.equal(c.packets[1].capLen, 0);
    assert.equal(c.packets[1].flags, undefined);
    assert.equal(c.isb!.get(4)![0].readBigUInt64LE(0), 7n);
    assert.equal(c.isb!.get(5)![0].readBigUInt64LE(0), 1n);
    assert.equal(c.isb!.get(8)![0].readBigUInt64LE(0), 2n);
    assert.equal(w.packets, 2);
  });

  it('pads data and options to 32 bits and repeats the block length', () => {
    for (let n = 0; n < 9; n++) {
      const b = packetBlock({ tsNs: 0n, data: Buffer.alloc(n, 0xaa), origLen: n });
      assert.equal(b.length % 4, 0);
      assert.equal(b.readUInt32LE(4), b.length);
      assert.equal(b.readUInt32LE(b.length - 4), b.length);
      assert.equal(parseBlocks(b).length, 1);
    }
  });
});
