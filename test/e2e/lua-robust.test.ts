// The dissector on hand-built records (every header field, expert info) and on
// thousands of mutated and truncated ones: it must never raise a Lua error.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { LINK_HEADER, LINK_VERSION } from '../../src/generated/vocab';
import { HFLAG } from '../../src/link-header';
import { encodeLinkHeader } from '../helpers/link-encode';
import { writePcapngFile } from '../helpers/pcapng-write';
import { need, tmpdir } from '../helpers/harness';
import { forEachWireshark } from '../helpers/wireshark';
import { control, message } from '../helpers/messages';
import { viewAddress } from '../helpers/view';

function writeCapture(file: string, recs: Buffer[], linktype = 147) {
  writePcapngFile(file, linktype, recs, 'unixsock test');
}

/** A small deterministic PRNG, so a failure can be replayed. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

describe('unixsock.lua on hand-built records', () => {
  it('shows every header field as a filterable field', async (t) => {
    if (!need(t, 'tshark')) return;
    const dir = tmpdir(t);
    const file = path.join(dir, 'fields.pcapng');
    const m = message({
      control: control([3, 9], { pid: 77, uid: 5, gid: 6 }),
      flags: HFLAG.HAS_CTRL | HFLAG.PEER_GUESS,
      localPath: Buffer.from('\0abstract-name'),
    });
    writeCapture(file, [Buffer.concat([encodeLinkHeader(m, 0, false), m.payload])]);
    const fields = [
      'unixsock.version',
      'unixsock.type',
      'unixsock.pid',
      'unixsock.tid',
      'unixsock.uid',
      'unixsock.gid',
      'unixsock.comm',
      'unixsock.peer.pid',
      'unixsock.peer.comm',
      'unixsock.syscall',
      'unixsock.inode',
      'unixsock.peer.inode',
      'unixsock.len',
      'unixsock.caplen',
      'unixsock.path',
      'unixsock.local.path',
      'unixsock.peer.path',
      'unixsock.path.inode',
      'unixsock.scm.rights.count',
      'unixsock.scm.rights.fd',
      'unixsock.scm.creds.pid',
      'unixsock.scm.creds.uid',
      'unixsock.scm.creds.gid',
      'unixsock.flags.peer_from_creator',
      'unixsock.strategy',
      'http.request.method',
      'unixsock.cgroup',
      'unixsock.pidns',
      'unixsock.nspid',
      'unixsock.mntns',
      'unixsock.peer.cgroup',
      'unixsock.peer.pidns',
      'unixsock.peer.nspid',
      'unixsock.peer.mntns',
    ];
    await forEachWireshark(t, ({ tshark }) => {
      // a true boolean prints as 1 in 4.0, as True in 4.4 and 4.6: read how this tshark prints a false one
      const no = tshark(['-r', file, '-T', 'fields', '-e', 'frame.marked']).trim();
      const yes = { '0': '1', False: 'True' }[no];
      assert.ok(yes, `frame.marked printed as ${no}`);
      const out = tshark(['-r', file, '-T', 'fields', '-E', 'separator=|', ...fields.flatMap((f) => ['-e', f])]).trim();
      assert.deepEqual(out.split('|'), [
        String(LINK_VERSION),
        '1',
        '4242',
        '4243',
        '1000',
        '1001',
        'curl',
        '811',
        'dockerd',
        '1',
        '1111',
        '2222',
        '18',
        '18',
        '@abstract-name',
        '@abstract-name',
        '/run/docker.sock',
        '3333',
        '2',
        '3,9',
        '77',
        '5',
        '6',
        yes,
        '3',
        'GET',
        '4660',
        '4026531836',
        '7',
        '4026531841',
        '4661',
        '4026531836',
        '811',
        '4026531841',
      ]);
      const info = tshark(['-r', file, '-T', 'fields', '-e', '_ws.col.Info', '-e', '_ws.col.Protocol']).trim();
      assert.match(info, /^curl 4242 → dockerd 811 @abstract-name {2}GET \/ HTTP\/1\.1\s*\tHTTP$/);
      // custom columns, the packet list's only view of the fields (no tree shown)
      const cols = tshark(['-r', file, '-o', 'gui.column.format:"Comm","%Cus:unixsock.comm","Peer","%Cus:unixsock.peer.pid"']).trim();
      assert.equal(cols, 'curl 811');
    });
  });

  it('names containers in fields and the Info column, learns a name for the records sent before it, and reads version-1 records', async (t) => {
    if (!need(t, 'tshark')) return;
    const file = path.join(tmpdir(t), 'containers.pcapng');
    const id = 'c'.repeat(64);
    const early = message({ tid: 1, cgroupId: 500n }); // went out before the name was known: ids only
    const named = message({ tid: 2, cgroupId: 500n, container: { id, name: 'web-1' }, peerCgroupId: 600n, peerContainer: { id: 'd'.repeat(64) } });
    // a version-1 record: the fixed part ends before cgroup_id, its options follow there
    const v2 = encodeLinkHeader(message({ tid: 3 }), 0, false);
    const v1 = Buffer.concat([v2.subarray(0, LINK_HEADER.off.cgroup_id), v2.subarray(LINK_HEADER.size)]);
    v1[0] = 1;
    v1.writeUInt16BE(v1.length, 2);
    writeCapture(file, [
      Buffer.concat([encodeLinkHeader(early, 0, false), early.payload]),
      Buffer.concat([encodeLinkHeader(named, 0, false), named.payload]),
      Buffer.concat([v1, early.payload]),
    ]);
    await forEachWireshark(t, ({ tshark }) => {
      const out = tshark([
        '-r',
        file,
        '-2',
        '-T',
        'fields',
        '-E',
        'separator=|',
        '-e',
        'unixsock.version',
        '-e',
        'unixsock.container.name',
        '-e',
        'unixsock.container.id',
        '-e',
        'unixsock.peer.container.id',
        '-e',
        '_ws.col.Info',
      ]);
      const rows = out
        .trim()
        .split('\n')
        .map((l) => l.split('|'));
      assert.deepEqual(
        rows.map((r) => r.slice(0, 4)),
        [
          [String(LINK_VERSION), 'web-1', id, ''],
          [String(LINK_VERSION), 'web-1', id, 'd'.repeat(64)],
          ['1', '', '', ''],
        ],
      );
      assert.match(rows[0][4], /^curl 4242 \[web-1\] → dockerd 811 \/run\/docker\.sock /);
      assert.match(rows[1][4], /^curl 4242 \[web-1\] → dockerd 811 \[dddddddddddd\] \/run\/docker\.sock /);
      assert.match(rows[2][4], /^curl 4242 → dockerd 811 \/run\/docker\.sock /);
      assert.equal(tshark(['-r', file, '-2', '-Y', 'unixsock.container.name == "web-1"', '-T', 'fields', '-e', 'frame.number']).trim(), '1\n2');
    });
  });

  it('datagrams and a 200 KiB stream record: the IPv6 layer Follow and Conversation Filter need, with no expert warnings', async (t) => {
    if (!need(t, 'tshark')) return;
    const dir = tmpdir(t);
    const file = path.join(dir, 'dgram.pcapng');
    // a client's datagrams to a bound server and the server's replies, then one stream record
    // bigger than an IPv6 payload length can say (a jumbogram: RFC 2675's hop-by-hop option)
    const path_ = Buffer.from('/run/log.sock');
    const recs: Buffer[] = [];
    const asks: ReturnType<typeof message>[] = [];
    for (let i = 0; i < 2; i++) {
      const ask = message({
        sockType: 2,
        ino: 500n,
        peerIno: 600n,
        localPath: Buffer.alloc(0),
        peerPath: path_,
        peerPathIsDest: true,
        payload: Buffer.from(`ping ${i}`),
        msgLen: 6,
      });
      const answer = message({
        sockType: 2,
        pid: 811,
        peerPid: 4242,
        comm: 'logd',
        peerComm: 'curl',
        ino: 600n,
        peerIno: 500n,
        localPath: path_,
        peerPath: Buffer.alloc(0),
        payload: Buffer.from(`pong ${i}`),
        msgLen: 6,
      });
      asks.push(ask);
      for (const m of [ask, answer]) recs.push(Buffer.concat([encodeLinkHeader(m, 0, false), m.payload]));
    }
    const ask0 = asks[0];
    const big = message({ payload: Buffer.alloc(200 * 1024, 0x61), msgLen: 200 * 1024, ino: 700n, peerIno: 800n });
    recs.push(Buffer.concat([encodeLinkHeader(big, 0, false), big.payload]));
    // and a 100 KiB datagram (a jumbogram too: UDP length 0, RFC 2675), whole to the dissector above UDP
    const bigDgram = message({
      sockType: 2,
      payload: Buffer.alloc(100 * 1024, 0x62),
      msgLen: 100 * 1024,
      ino: 900n,
      peerIno: 901n,
      localPath: Buffer.alloc(0),
      peerPath: path_,
    });
    recs.push(Buffer.concat([encodeLinkHeader(bigDgram, 0, false), bigDgram.payload]));
    writeCapture(file, recs);
    await forEachWireshark(t, ({ tshark }) => {
      const rows = tshark([
        '-r',
        file,
        '-T',
        'fields',
        '-E',
        'separator=|',
        '-e',
        'frame.protocols',
        '-e',
        'ipv6.src',
        '-e',
        'ipv6.dst',
        '-e',
        'udp.srcport',
        '-e',
        'udp.dstport',
        '-e',
        'unixsock.from',
        '-e',
        'unixsock.to',
        '-e',
        'tcp.len',
        '-e',
        'data.len',
      ])
        .trim()
        .split('\n')
        .map((l) => l.split('|'));
      assert.deepEqual(
        rows.map((r) => r[0].split(':').slice(0, 3).join(':')),
        ['unixsock:ipv6:udp', 'unixsock:ipv6:udp', 'unixsock:ipv6:udp', 'unixsock:ipv6:udp', 'unixsock:ipv6:ipv6.hopopts', 'unixsock:ipv6:ipv6.hopopts'],
      );
      assert.deepEqual(
        rows.slice(0, 2).map((r) => [r[5], r[6]]),
        [
          ['curl 4242', 'dockerd 811'],
          ['logd 811', 'curl 4242'],
        ],
      );
      assert.equal(rows[4][7], String(200 * 1024), 'the whole 200 KiB payload in one segment');
      assert.equal(rows[5][8], String(100 * 1024), 'the whole 100 KiB datagram');
      const [, src, dst, sport, dport] = rows[0];
      // the sides' cgroups (the first record's sender and peer), fixed for the connection: also on the answers
      assert.deepEqual([src, dst], [viewAddress(ask0.cgroupId), viewAddress(ask0.peerCgroupId)]);
      assert.deepEqual([rows[1][1], rows[1][2]], [dst, src]);
      // the tree's view item names both, as Wireshark prints them, with their cgroup ids
      const view = tshark(['-r', file, '-Y', 'frame.number == 1', '-T', 'fields', '-e', 'unixsock.view']).trim();
      assert.equal(
        view,
        `IPv6/UDP ${sport} → ${dport}, not network traffic: addresses ${src} (client, cgroup ${ask0.cgroupId}) / ${dst} (server, cgroup ${ask0.peerCgroupId})`,
      );
      const conv = `(ipv6.addr eq ${src} and ipv6.addr eq ${dst}) and (udp.port eq ${sport} and udp.port eq ${dport})`;
      assert.deepEqual(tshark(['-r', file, '-Y', conv, '-T', 'fields', '-e', 'frame.number']).trim().split('\n'), ['1', '2', '3', '4']);
      const follow = tshark(['-r', file, '-q', '-z', 'follow,udp,ascii,0']);
      for (const w of ['ping 0', 'pong 0', 'ping 1', 'pong 1']) assert.match(follow, new RegExp(w));
      // no expert warning or error (UDP over IPv6 with checksum 0 was "Illegal checksum value (0)")
      const expertOut = tshark(['-r', file, '-q', '-z', 'expert,warn']);
      assert.doesNotMatch(expertOut, /Warning|Error/, expertOut);
    });
  });

  it('gives expert info for truncated, unreadable, lost, dropped-before, unknown-version and malformed records', async (t) => {
    if (!need(t, 'tshark')) return;
    const dir = tmpdir(t);
    const file = path.join(dir, 'expert.pcapng');
    const good = message();
    const hdr = encodeLinkHeader(good, 0, false);
    const v2 = Buffer.from(hdr);
    v2[0] = LINK_VERSION + 1;
    const badLen = Buffer.from(hdr);
    badLen.writeUInt16BE(60000, 2);
    writeCapture(file, [
      Buffer.concat([encodeLinkHeader(message({ flags: HFLAG.TRUNCATED, msgLen: 100 }), 0, false), good.payload]),
      encodeLinkHeader(message({ flags: HFLAG.NO_PAYLOAD, syscall: 40, payload: Buffer.alloc(0) }), 0, false),
      Buffer.concat([encodeLinkHeader(message({ flags: HFLAG.LOST }), 0, false), good.payload.subarray(0, 4)]),
      Buffer.concat([encodeLinkHeader(message({ flags: HFLAG.DROPS_BEFORE }), 0, false), good.payload]),
      Buffer.concat([v2, good.payload]),
      badLen,
      Buffer.from([1, 1]),
    ]);
    await forEachWireshark(t, ({ tshark }) => {
      const out = tshark(['-r', file, '-q', '-z', 'expert,chat']);
      assert.match(out, /Payload truncated to the snap length/);
      assert.match(out, /Payload not readable/);
      assert.match(out, /Part of this message was lost/);
      assert.match(out, /Messages were dropped before this one/);
      assert.match(out, new RegExp(`header version ${LINK_VERSION + 1}`));
      assert.match(out, /header length 60000 does not fit/);
      assert.match(out, /record shorter than the header/);
    });
  });

  it('decodes the LINKTYPE_USERn chosen in its preference', async (t) => {
    if (!need(t, 'tshark')) return;
    const dir = tmpdir(t);
    const file = path.join(dir, 'user3.pcapng');
    const m = message();
    writeCapture(file, [Buffer.concat([encodeLinkHeader(m, 0, false), m.payload])], 150);
    await forEachWireshark(t, ({ tshark }) => {
      const none = tshark(['-r', file, '-T', 'fields', '-e', 'unixsock.pid']);
      assert.equal(none.trim(), '', 'USER3 is not ours by default');
      const ours = tshark(['-r', file, '-o', 'unixsock.user_dlt:3', '-T', 'fields', '-e', 'unixsock.pid']);
      assert.equal(ours.trim(), '4242');
    });
  });
});

describe('unixsock.lua fuzzing', () => {
  it('never raises a Lua error on thousands of mutated and truncated records', async (t) => {
    if (!need(t, 'tshark')) return;
    const dir = tmpdir(t);
    const file = path.join(dir, 'fuzz.pcapng');
    const rand = rng(0x5eed);
    const seeds = [
      message(),
      message({ sockType: 2, peerPathIsDest: true, payload: Buffer.from('<13>syslog line') }),
      message({ sockType: 5, control: control([1, 2, 3], { pid: 1, uid: 2, gid: 3 }), flags: HFLAG.HAS_CTRL }),
      message({ localPath: Buffer.from('/tmp/.X11-unix/X0'), peerPath: Buffer.alloc(0), payload: Buffer.from('l\0\x0b\0\0\0\0\0\0\0\0\0') }),
      message({ payload: Buffer.from('\0AUTH EXTERNAL 30\r\nBEGIN\r\nl\x01\0\x01\0\0\0\0\x01\0\0\0\x6e\0\0\0') }),
      message({ payload: Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0') }),
    ].map((m) => Buffer.concat([encodeLinkHeader(m, 0, false), m.payload]));
    const recs: Buffer[] = [];
    for (let i = 0; i < 3000; i++) {
      const base = Buffer.from(seeds[i % seeds.length]);
      const kind = i % 4;
      if (kind === 0) {
        // flip random bytes, header included
        for (let k = 0; k < 1 + Math.floor(rand() * 8); k++) base[Math.floor(rand() * base.length)] = Math.floor(rand() * 256);
        recs.push(base);
      } else if (kind === 1) {
        recs.push(base.subarray(0, Math.floor(rand() * base.length)));
      } else if (kind === 2) {
        // plausible header lengths and option lengths, wrong contents
        base.writeUInt16BE(Math.floor(rand() * 400), 2);
        if (base.length > 108) base.writeUInt16BE(Math.floor(rand() * 0xffff), 106);
        recs.push(base);
      } else {
        recs.push(Buffer.from(Array.from({ length: Math.floor(rand() * 300) }, () => Math.floor(rand() * 256))));
      }
    }
    writeCapture(file, recs);
    // the first pass and a full tree of every record (-V), also through the two-pass path
    await forEachWireshark(t, ({ tshark }) => {
      const out = tshark(['-r', file, '-2', '-V'], { allowStderr: true });
      assert.ok(out.length > 0);
      assert.doesNotMatch(out, /Lua Error|lua_pcall|attempt to/i);
      // and with no tree shown, only fields asked for (the path where items are built for filters, not display)
      const fields = tshark(['-r', file, '-T', 'fields', '-e', 'unixsock.pid', '-e', '_ws.expert.message'], { allowStderr: true });
      assert.equal(fields.split('\n').filter(Boolean).length, recs.length);
      assert.doesNotMatch(fields, /Lua Error|lua_pcall|attempt to/i);
    });
  });
});
