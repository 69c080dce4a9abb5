// End-to-end: real programs captured by the real engine, decoded by tshark
// with wireshark/unixsock.lua. Asserts protocol fields, reassembly,
// Follow Stream and conversations.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { LUA, ROOT, exited, need, needBpf, records, sleep, startCapture, startXvfb, tmpdir, waitForSocket } from '../helpers/harness';
import { forEachWireshark } from '../helpers/wireshark';
import { viewAddress, viewAddressRe } from '../helpers/view';

const lines = (s: string) => s.split('\n').filter(Boolean);

describe('unixsock.lua on captures of real programs', () => {
  it('HTTP/1.1: curl and a Node server, 1 MiB body, chunked, keep-alive, follow and conversations', async (t) => {
    if (!needBpf(t) || !need(t, 'curl', 'tshark')) return;
    const dir = tmpdir(t);
    const sock = path.join(dir, 'api.sock');
    const body = Buffer.alloc(1 << 20);
    for (let i = 0; i < body.length; i++) body[i] = (i * 13 + (i >> 8)) & 0xff;
    fs.writeFileSync(path.join(dir, 'body.bin'), body);
    const server = spawn(process.execPath, [path.join(ROOT, 'test/helpers/http-server.js'), sock, path.join(dir, 'body.bin')], { stdio: 'ignore' });
    t.after(() => server.kill());
    await waitForSocket(sock);
    const cap = await startCapture(t, ['path', sock]);
    execFileSync('curl', ['-s', '-o', '/dev/null', '--unix-socket', sock, 'http://unixsock/big']);
    execFileSync('curl', ['-s', '-o', '/dev/null', '--unix-socket', sock, 'http://unixsock/chunked']);
    // keep-alive: three requests on one connection
    execFileSync('curl', [
      '-s',
      '-o',
      '/dev/null',
      '-o',
      '/dev/null',
      '-o',
      '/dev/null',
      '--unix-socket',
      sock,
      'http://unixsock/a',
      'http://unixsock/b',
      'http://unixsock/c',
    ]);
    await sleep(100);
    const { code } = await cap.stop();
    assert.equal(code, 0);

    const f = cap.file;
    // the cgroups the kernel saw curl and the server in: the view's addresses are made of them
    const recs = records(f);
    const curlCgroup = recs.find((r) => r.comm === 'curl')!.cgroupId;
    const serverCgroup = recs.find((r) => r.pid === server.pid)!.cgroupId;
    await forEachWireshark(t, ({ tshark }) => {
      const reqs = lines(
        tshark([
          '-r',
          f,
          '-Y',
          'http.request',
          '-T',
          'fields',
          '-e',
          'http.request.uri',
          '-e',
          'tcp.stream',
          '-e',
          'unixsock.comm',
          '-e',
          'unixsock.peer.comm',
          '-e',
          'frame.number',
        ]),
      );
      assert.deepEqual(
        reqs.map((l) => l.split('\t')[0]),
        ['/big', '/chunked', '/a', '/b', '/c'],
      );
      const streams = reqs.map((l) => l.split('\t')[1]);
      assert.equal(new Set(streams).size, 3, 'three connections');
      assert.equal(streams[2], streams[3], 'keep-alive requests share a stream');
      assert.equal(streams[3], streams[4]);
      for (const l of reqs) assert.deepEqual(l.split('\t').slice(2, 4), ['curl', 'node']);

      // each response matched to its request (http.request_in: 4.4 and 4.6 have no http.response_for.uri)
      const uriOfFrame = new Map(reqs.map((l) => [l.split('\t')[4], l.split('\t')[0]]));
      const resps = lines(
        tshark(['-r', f, '-Y', 'http.response', '-T', 'fields', '-e', 'http.response.code', '-e', 'http.request_in', '-e', 'http.transfer_encoding']),
      );
      assert.equal(resps.length, 5);
      for (const r of resps) assert.equal(r.split('\t')[0], '200');
      assert.deepEqual(
        resps.map((r) => uriOfFrame.get(r.split('\t')[1])),
        ['/big', '/chunked', '/a', '/b', '/c'],
      );
      assert.equal(resps[1].split('\t')[2], 'chunked');

      // the 1 MiB body, reassembled from many writes, byte for byte
      const objs = fs.mkdtempSync(path.join(dir, 'objects-'));
      tshark(['-r', f, '-q', '--export-objects', `http,${objs}`]);
      const big = fs.readFileSync(path.join(objs, 'big'));
      assert.equal(big.length, body.length);
      assert.equal(Buffer.compare(big, body), 0);
      const chunked = fs.readFileSync(path.join(objs, 'chunked')).toString();
      assert.equal(chunked, Array.from({ length: 10 }, (_, i) => `chunk-${i};`.repeat(100)).join(''));

      // Follow TCP Stream on the keep-alive connection
      const follow = tshark(['-r', f, '-q', '-z', `follow,tcp,ascii,${streams[2]}`]);
      for (const u of ['a', 'b', 'c']) {
        assert.match(follow, new RegExp(`GET /${u} HTTP/1.1`));
        assert.match(follow, new RegExp(`hello /${u}`));
      }
      // conversations: one per curl connection, between curl's cgroup and the server's (the view's addresses)
      const conv = tshark(['-r', f, '-q', '-z', 'conv,tcp']);
      const convRe = new RegExp(`${viewAddressRe(curlCgroup)}:\\d+\\s+<->\\s+${viewAddressRe(serverCgroup)}:80\\b`, 'g');
      assert.equal((conv.match(convRe) ?? []).length, 3, conv);
      // what the GUI needs for Follow and Conversation Filter: a network layer (pinfo->net_src/net_dst,
      // from the synthetic IPv6 header), and the filter Wireshark builds from it ("ipv6.addr eq … and
      // tcp.port eq …", epan/dissectors/packet-tcp.c) selects exactly that connection's packets
      const keepAlive = lines(
        tshark([
          '-r',
          f,
          '-Y',
          `tcp.stream == ${streams[2]}`,
          '-T',
          'fields',
          '-e',
          'frame.number',
          '-e',
          'ipv6.src',
          '-e',
          'ipv6.dst',
          '-e',
          'tcp.srcport',
          '-e',
          'tcp.dstport',
          '-e',
          'frame.protocols',
        ]),
      );
      assert.ok(keepAlive.length >= 6, 'three requests and three responses');
      const [, src, dst, sport, dport, protocols] = keepAlive[0].split('\t');
      assert.match(protocols, /^unixsock:ipv6:tcp:http/);
      assert.deepEqual([src, dst], [viewAddress(curlCgroup), viewAddress(serverCgroup)]);
      const convFilter = `(ipv6.addr eq ${src} and ipv6.addr eq ${dst}) and (tcp.port eq ${sport} and tcp.port eq ${dport})`;
      assert.deepEqual(
        lines(tshark(['-r', f, '-Y', convFilter, '-T', 'fields', '-e', 'frame.number'])),
        keepAlive.map((l) => l.split('\t')[0]),
      );
      // the header fields, and no expert warnings from the synthetic TCP
      const hdr = lines(
        tshark(['-r', f, '-Y', 'http.request.uri == "/a"', '-T', 'fields', '-e', 'unixsock.path', '-e', 'unixsock.type', '-e', 'unixsock.peer.pid']),
      );
      assert.deepEqual(hdr[0].split('\t'), [sock, '1', String(server.pid)]);
      const warn = tshark(['-r', f, '-q', '-z', 'expert,warn']);
      assert.doesNotMatch(warn, /Warning/, warn);
    });

    // the profile "unixsock" shows who talks in its From and To columns (the host's Wireshark)
    const profileHome = tmpdir(t);
    fs.mkdirSync(path.join(profileHome, '.config/wireshark/profiles/unixsock'), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'wireshark/profile/preferences'), path.join(profileHome, '.config/wireshark/profiles/unixsock/preferences'));
    const listed = spawnSync('tshark', ['-C', 'unixsock', '-X', `lua_script:${LUA}`, '-r', f, '-Y', 'http.request.uri == "/a"'], {
      encoding: 'utf8',
      env: { ...process.env, HOME: profileHome },
    }).stdout;
    assert.match(listed, new RegExp(`\\scurl \\d+ node ${server.pid} ${sock.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} HTTP `), listed);
  });

  it('X11: Xvfb with xdpyinfo and xwininfo at the same time: setup, requests, replies, events', async (t) => {
    if (!needBpf(t) || !need(t, 'Xvfb', 'xdpyinfo', 'xwininfo', 'tshark')) return;
    const { proc: xvfb, display } = await startXvfb(t, '-screen', '0', '800x600x24');
    const env = { ...process.env, DISPLAY: display };
    // the server answers before the capture starts
    for (let i = 0; spawnSync('xdpyinfo', [], { env, stdio: 'ignore' }).status !== 0; i++) {
      if (i > 50) throw new Error('Xvfb did not come up');
      await sleep(100);
    }
    const cap = await startCapture(t, ['pid', String(xvfb.pid)]);
    const a = spawn('xdpyinfo', [], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    const b = spawn('xwininfo', ['-root', '-tree'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    // what a client says when it fails (xwininfo exited 1 twice in many runs, once under load, once in Debian 13)
    const said: string[] = ['', ''];
    [a, b].forEach((p, i) => p.stderr.on('data', (d) => (said[i] += d)));
    assert.deepEqual(await Promise.all([a, b].map((p) => exited(p))), [0, 0], `both clients ran: ${said.join(' | ')}`);
    await sleep(100);
    await cap.stop();
    const f = cap.file;
    // what Xvfb declared in each connection reply, its first message on each connection
    // (success 1, protocol 11, little-endian clients)
    const firsts = new Map<bigint, Buffer>();
    for (const r of records(f)) if (r.pid === xvfb.pid && !firsts.has(r.ino)) firsts.set(r.ino, r.payload);
    const setupReplyLengths = [...firsts.values()].filter((p) => p.length >= 8 && p[0] === 1 && p.readUInt16LE(2) === 11).map((p) => 8 + 4 * p.readUInt16LE(6));
    assert.equal(setupReplyLengths.length, 2, 'two connection replies sent');
    await forEachWireshark(t, ({ tshark }) => {
      const setup = lines(tshark(['-r', f, '-Y', 'x11', '-T', 'fields', '-e', '_ws.col.Info']));
      assert.equal(setup.filter((l) => /Initial connection request/.test(l)).length, 2, setup.join('\n'));
      assert.equal(setup.filter((l) => /Initial connection reply/.test(l)).length, 2);
      const replies = lines(tshark(['-r', f, '-Y', 'x11.reply', '-T', 'fields', '-e', 'unixsock.comm']));
      assert.ok(replies.length >= 10, `replies decoded: ${replies.length}`);
      for (const r of replies) assert.equal(r, 'Xvfb');
      const ops = tshark(['-r', f, '-T', 'fields', '-e', 'x11.opcode']);
      assert.match(ops, /\b98\b/, 'QueryExtension (98) from xdpyinfo');
      assert.match(ops, /\b15\b/, 'QueryTree (15) from xwininfo');
      // replies matched to their requests: "Reply: <request name>"
      const info = tshark(['-r', f, '-Y', 'x11.reply', '-T', 'fields', '-e', '_ws.col.Info']);
      assert.match(info, /Reply: QueryExtension/);
      assert.match(info, /Reply: QueryTree/);
      // each connection reply (8 bytes + 4 x its length field: thousands of bytes, as many as this
      // Xvfb's visuals need; Debian 13's is smaller than 12's) is decoded as one whole PDU
      const rows = lines(tshark(['-r', f, '-Y', 'x11', '-T', 'fields', '-e', '_ws.col.Info', '-e', 'tcp.len', '-e', 'tcp.reassembled.length']));
      const decoded = rows
        .filter((l) => /Initial connection reply/.test(l))
        .map((l) => {
          const [, len, reassembled] = l.split('\t');
          return Number(reassembled || len);
        });
      assert.deepEqual(decoded.sort(), setupReplyLengths.sort(), rows.join('\n'));
      const conv = tshark(['-r', f, '-q', '-z', 'conv,tcp']);
      const xCgroup = records(f).find((r) => r.pid === xvfb.pid)!.cgroupId;
      assert.equal((conv.match(new RegExp(`<->\\s+${viewAddressRe(xCgroup)}:60\\d\\d\\b`, 'g')) ?? []).length, 2, "two X11 connections, to Xvfb's cgroup");
    });
  });

  it('D-Bus: dbus-daemon with dbus-send calls and replies (SASL stepped over)', async (t) => {
    if (!needBpf(t) || !need(t, 'dbus-daemon', 'dbus-send', 'tshark')) return;
    const dir = tmpdir(t);
    const bus = path.join(dir, 'bus');
    const conf = path.join(dir, 'bus.conf');
    fs.writeFileSync(
      conf,
      `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path=${bus}</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy></busconfig>`,
    );
    const daemon = spawn('dbus-daemon', [`--config-file=${conf}`, '--nofork'], { stdio: 'ignore' });
    t.after(() => daemon.kill());
    await waitForSocket(bus);
    const cap = await startCapture(t, ['path', bus]);
    execFileSync('dbus-send', [
      `--bus=unix:path=${bus}`,
      '--print-reply',
      '--dest=org.freedesktop.DBus',
      '/org/freedesktop/DBus',
      'org.freedesktop.DBus.ListNames',
    ]);
    execFileSync('dbus-send', [
      `--bus=unix:path=${bus}`,
      '--print-reply',
      '--dest=org.freedesktop.DBus',
      '/org/freedesktop/DBus',
      'org.freedesktop.DBus.GetId',
    ]);
    await sleep(100);
    await cap.stop();
    const f = cap.file;
    await forEachWireshark(t, ({ tshark }) => {
      const members = lines(tshark(['-r', f, '-Y', 'dbus', '-T', 'fields', '-e', 'dbus.member']));
      const flat = members.join(',');
      assert.match(flat, /Hello/);
      assert.match(flat, /ListNames/);
      assert.match(flat, /GetId/);
      const types = tshark(['-r', f, '-Y', 'dbus', '-T', 'fields', '-e', 'dbus.message_type']);
      assert.match(types, /^1$/m, 'method calls');
      assert.match(types, /^2$/m, 'method returns');
      const sasl = tshark(['-r', f, '-Y', 'unixsock_dbus.sasl', '-T', 'fields', '-e', 'unixsock_dbus.sasl']);
      assert.match(sasl, /AUTH EXTERNAL/);
      assert.match(sasl, /BEGIN/);
    });
  });

  it('PostgreSQL: psql and postgres over the Unix socket: startup, query, row data', async (t) => {
    if (!needBpf(t) || !need(t, 'psql', 'tshark', 'runuser')) return;
    const bin = fs
      .readdirSync('/usr/lib/postgresql')
      .map((v) => `/usr/lib/postgresql/${v}/bin`)
      .find((d) => fs.existsSync(`${d}/initdb`));
    if (!bin) {
      if (process.env.CI === 'true') throw new Error('postgresql server binaries are missing (scripts/deps.sh installs postgresql)');
      t.skip('postgresql server is not installed');
      return;
    }
    const dir = tmpdir(t);
    const data = path.join(dir, 'data');
    const sockDir = path.join(dir, 'run');
    fs.mkdirSync(sockDir);
    execFileSync('chown', ['-R', 'postgres', dir]);
    execFileSync('runuser', ['-u', 'postgres', '--', `${bin}/initdb`, '-A', 'trust', '-D', data], { stdio: 'ignore' });
    const pg = spawn('runuser', ['-u', 'postgres', '--', `${bin}/postgres`, '-D', data, '-k', sockDir, '-c', 'listen_addresses=', '-p', '5432'], {
      stdio: 'ignore',
    });
    t.after(() => {
      spawnSync('runuser', ['-u', 'postgres', '--', `${bin}/pg_ctl`, '-D', data, '-m', 'immediate', 'stop'], { stdio: 'ignore' });
      pg.kill();
    });
    const sock = path.join(sockDir, '.s.PGSQL.5432');
    await waitForSocket(sock, 20000);
    await sleep(500);
    const cap = await startCapture(t, ['path', sock]);
    const out = execFileSync('runuser', ['-u', 'postgres', '--', 'psql', '-h', sockDir, '-p', '5432', '-At', '-c', "select 'unixsock-row', 40 + 2"], {
      encoding: 'utf8',
    });
    assert.equal(out.trim(), 'unixsock-row|42');
    await sleep(100);
    await cap.stop();
    const f = cap.file;
    await forEachWireshark(t, ({ tshark }) => {
      const types = tshark(['-r', f, '-Y', 'pgsql', '-T', 'fields', '-e', 'pgsql.type']);
      assert.match(types, /Startup message/);
      assert.match(types, /Simple query/);
      assert.match(types, /Data row/);
      const q = tshark(['-r', f, '-Y', 'pgsql.query', '-T', 'fields', '-e', 'pgsql.query']);
      assert.match(q, /select 'unixsock-row', 40 \+ 2/);
      const row = tshark(['-r', f, '-Y', 'pgsql.type == "Data row"', '-T', 'fields', '-e', 'pgsql.val.data']);
      assert.ok(
        row.includes(
          Buffer.from('unixsock-row')
            .toString('hex')
            .replace(/(..)(?!$)/g, '$1:'),
        ) || row.includes('756e6978736f636b2d726f77'),
        row,
      );
    });
  });

  it('HTTP/2: a gRPC-style exchange with Node http2 on a Unix socket', async (t) => {
    if (!needBpf(t) || !need(t, 'tshark')) return;
    const dir = tmpdir(t);
    const sock = path.join(dir, 'grpc.sock');
    const h2 = path.join(ROOT, 'test/helpers/h2.js');
    const server = spawn(process.execPath, [h2, 'server', sock], { stdio: 'ignore' });
    t.after(() => server.kill());
    await waitForSocket(sock);
    const cap = await startCapture(t, ['path', sock]);
    const out = execFileSync(process.execPath, [h2, 'client', sock], { encoding: 'utf8' });
    assert.equal(out.trim(), 'status 200');
    await sleep(100);
    await cap.stop();
    const f = cap.file;
    await forEachWireshark(t, ({ tshark }) => {
      const types = tshark(['-r', f, '-Y', 'http2', '-T', 'fields', '-e', 'http2.type']);
      assert.match(types, /\b1\b/, 'HEADERS');
      assert.match(types, /\b0\b/, 'DATA');
      assert.match(types, /\b4\b/, 'SETTINGS');
      const hdrs = tshark(['-r', f, '-Y', 'http2.header', '-T', 'fields', '-e', 'http2.header.value']);
      assert.match(hdrs, /\/unixsock\.Test\/Ping/);
      assert.match(hdrs, /application\/grpc/);
    });
  });
});
