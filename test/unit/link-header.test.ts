import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { LINK_HEADER } from '../../src/generated/vocab';
import { FIXED_LEN, HFLAG, TLV, decodeLinkHeader } from '../../src/link-header';
import { encodeLinkHeader } from '../helpers/link-encode';
import { ROOT } from '../helpers/harness';
import { control, message } from '../helpers/messages';

describe('unixsock link-layer header', () => {
  it('round-trips every field', () => {
    const m = message({ control: control([3, 7], { pid: 4242, uid: 1000, gid: 1001 }), flags: HFLAG.HAS_CTRL, localPath: Buffer.from('\0abstract') });
    const h = encodeLinkHeader(m, 0, false);
    const d = decodeLinkHeader(Buffer.concat([h, m.payload]));
    assert.equal(d.version, 2);
    assert.equal(d.headerLen, h.length);
    assert.equal(h.length % 4, 0);
    assert.deepEqual(
      [
        d.sockType,
        d.flags,
        d.strategy,
        d.pid,
        d.tid,
        d.uid,
        d.gid,
        d.peerPid,
        d.syscall,
        d.ino,
        d.peerIno,
        d.msgLen,
        d.offset,
        d.pathDev,
        d.pathIno,
        d.comm,
        d.peerComm,
      ],
      [1, HFLAG.HAS_CTRL, 3, 4242, 4243, 1000, 1001, 811, 1, 1111n, 2222n, 18, 0, (8 << 20) | 1, 3333n, 'curl', 'dockerd'],
    );
    assert.deepEqual(d.localPath, Buffer.from('\0abstract'));
    assert.deepEqual(d.peerPath, Buffer.from('/run/docker.sock\0'));
    assert.deepEqual(d.rights, [3, 7]);
    assert.deepEqual(d.creds, { pid: 4242, uid: 1000, gid: 1001 });
    assert.equal(d.payload.toString(), 'GET / HTTP/1.1\r\n\r\n');
    assert.deepEqual(
      [d.cgroupId, d.peerCgroupId, d.pidns, d.nspid, d.mntns, d.peerPidns, d.peerNspid, d.peerMntns],
      [0x1234n, 0x1235n, 4026531836, 7, 4026531841, 4026531836, 811, 4026531841],
    );
    assert.equal(d.containerId, undefined);
  });

  it('carries container ids and names as options, and still reads version 1 records', () => {
    const id = 'a'.repeat(64);
    const m = message({ container: { id, name: 'web-1' }, peerContainer: { id: 'b'.repeat(64) } });
    const d = decodeLinkHeader(Buffer.concat([encodeLinkHeader(m, 0, false), m.payload]));
    assert.deepEqual([d.containerId, d.containerName, d.peerContainerId, d.peerContainerName], [id, 'web-1', 'b'.repeat(64), undefined]);
    // a version-1 record: the fixed part ends before cgroup_id, options follow there
    const v2 = encodeLinkHeader(message(), 0, false);
    const cut = LINK_HEADER.off.cgroup_id;
    const v1 = Buffer.concat([v2.subarray(0, cut), v2.subarray(FIXED_LEN)]);
    v1.writeUInt8(1, 0);
    v1.writeUInt16BE(v1.length, 2);
    const d1 = decodeLinkHeader(Buffer.concat([v1, Buffer.from('x')]));
    assert.deepEqual([d1.version, d1.pid, d1.cgroupId, d1.nspid, d1.payload.toString()], [1, 4242, 0n, 0, 'x']);
    assert.deepEqual(d1.peerPath, Buffer.from('/run/docker.sock\0'));
  });

  it('marks continued records and a destination address', () => {
    const m = message({ peerPathIsDest: true, sockType: 2 });
    const d = decodeLinkHeader(encodeLinkHeader(m, 65536, true));
    assert.equal(d.offset, 65536);
    assert.ok(d.flags & HFLAG.MORE);
    assert.deepEqual(d.destPath, Buffer.from('/run/docker.sock\0'));
    assert.equal(d.peerPath, undefined);
  });

  it('flags ancillary data it cannot parse', () => {
    const bad = Buffer.alloc(20);
    bad.writeBigUInt64LE(200n, 0); // cmsg_len beyond the buffer
    const d = decodeLinkHeader(encodeLinkHeader(message({ control: bad }), 0, false));
    assert.ok(d.flags & HFLAG.CTRL_MALFORMED);
  });

  it('matches the byte-by-byte description in docs/link-header.md', () => {
    const doc = fs.readFileSync(path.join(ROOT, 'docs/link-header.md'), 'utf8');
    // every fixed field: "| offset | size | name |" rows, checked against an encoded header
    const rows = [...doc.matchAll(/^\| (\d+) \| (\d+) \| `([a-z0-9_]+)` \|/gm)].map((r) => ({ off: +r[1], size: +r[2], name: r[3] }));
    assert.ok(rows.length >= 20, 'the table lists the fixed fields');
    const h = encodeLinkHeader(message(), 0, false);
    const expect: Record<string, bigint | number | string> = {
      version: 2,
      sock_type: 1,
      header_len: h.length,
      flags: 0,
      strategy: 3,
      pid: 4242,
      tid: 4243,
      uid: 1000,
      gid: 1001,
      peer_pid: 811,
      syscall: 1,
      inode: 1111n,
      peer_inode: 2222n,
      msg_len: 18,
      offset: 0,
      path_dev: (8 << 20) | 1,
      path_inode: 3333n,
      comm: 'curl',
      peer_comm: 'dockerd',
      cgroup_id: 0x1234n,
      peer_cgroup_id: 0x1235n,
      pidns: 4026531836,
      nspid: 7,
      mntns: 4026531841,
      peer_pidns: 4026531836,
      peer_nspid: 811,
      peer_mntns: 4026531841,
    };
    let end = 0;
    for (const r of rows) {
      end = Math.max(end, r.off + r.size);
      if (!(r.name in expect)) continue;
      const v = expect[r.name];
      const got =
        typeof v === 'string'
          ? h.toString('latin1', r.off, r.off + r.size).replace(/\0+$/, '')
          : r.size === 8
            ? h.readBigUInt64BE(r.off)
            : r.size === 4
              ? h.readUInt32BE(r.off)
              : r.size === 2
                ? h.readUInt16BE(r.off)
                : h.readUInt8(r.off);
      assert.equal(got, v, `${r.name} at ${r.off}`);
      delete expect[r.name];
    }
    assert.deepEqual(Object.keys(expect), [], 'every field is documented');
    assert.equal(end, FIXED_LEN);
    for (const [name, code] of Object.entries(TLV)) assert.match(doc, new RegExp(`\\| ${code} \\| \`${name}\``), `option ${name}`);
    for (const [name, bit] of Object.entries(HFLAG))
      assert.match(doc, new RegExp(`\\| 0x${bit.toString(16).padStart(4, '0')} \\| \`${name}\``), `flag ${name}`);
  });
});
