// End-to-end: container identity without a container runtime. A process in
// its own pid and mount namespaces (unshare) and in a cgroup the test makes,
// named the way LXC names its containers' cgroups (/lxc.payload.NAME), on the
// v2 hierarchy (whose ids the kernel reports) and, on a hybrid machine like
// this one, in a v1 hierarchy too; it talks to a listener in the test. Then
// the pidns and netns filters on a process in its own pid and net namespaces.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { unifiedMount, unifiedPathOf } from '../../src/cgroup';
import { CI, EXE, ROOT, SOCKGEN, exited, need, needBpf, records, sleep, startCapture, tmpdir, tshark, waitForSocket, type Rec } from '../helpers/harness';
import { readPcapng } from '../helpers/pcapng-read';
import { viewAddress, viewAddressHex } from '../helpers/view';
import { forEachWireshark } from '../helpers/wireshark';

/** A v1 hierarchy to join as well (hybrid machines), or undefined on a pure v2 one. */
function v1Hierarchy(): string | undefined {
  const mounts = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n');
  const v1 = mounts.map((l) => l.split(' ')).find((f) => f[2] === 'cgroup' && /\bpids\b/.test(f[3] ?? ''));
  return v1?.[1];
}

/** Makes the cgroup NAME under each root (removed again after the test). */
function makeCgroups(t: TestContext, name: string, roots: string[]): string[] {
  const dirs = roots.map((r) => path.join(r, name));
  for (const d of dirs) fs.mkdirSync(d);
  t.after(async () => {
    for (const d of dirs) {
      // the processes have ended; a cgroup is removed once empty
      for (let i = 0; i < 50; i++) {
        try {
          fs.rmdirSync(d);
          break;
        } catch {
          await sleep(100);
        }
      }
    }
  });
  return dirs;
}

/** Runs sockgen connect SOCK TEXT in the cgroups, in new pid and mount namespaces; resolves with its JSON and /proc/PID/cgroup. */
interface Gen {
  pid: number;
  len: number;
  pidns: number;
  mntns: number;
  cgroup: number;
}

function runInside(dirs: string[], sock: string, text: string): Promise<{ gen: Gen; procCgroup: string }> {
  // the shell joins the cgroups, then becomes unshare, whose child is pid 1 of the new pid namespace
  const join = dirs.map((d) => `echo $$ > '${d}/cgroup.procs'`).join(' && ');
  const script = `${join} && cat /proc/self/cgroup >&2 && exec unshare --pid --fork --mount --mount-proc ${SOCKGEN} connect '${sock}' '${text}'`;
  return new Promise((resolve, reject) => {
    const p = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (b) => (out += b));
    p.stderr.on('data', (b) => (err += b));
    p.on('close', (code) => {
      if (code !== 0) reject(new Error(`sh exited ${code}: ${err}`));
      else resolve({ gen: JSON.parse(out) as Gen, procCgroup: err });
    });
  });
}

describe('namespaces and cgroups without a container runtime', () => {
  it("records a process's own pid and mount namespaces, its pid inside, and its cgroup, named as a container; filters on the cgroup", async (t) => {
    if (!needBpf(t) || !need(t, 'unshare', 'tshark')) return;
    const root = unifiedMount();
    if (!root) {
      if (CI) throw new Error('no cgroup v2 hierarchy is mounted');
      return t.skip('no cgroup v2 hierarchy is mounted');
    }
    const name = `unixsock-ns-${process.pid}`;
    const cg = `lxc.payload.${name}`;
    const v1 = v1Hierarchy();
    const dirs = makeCgroups(t, cg, v1 ? [root, v1] : [root]);
    const cgroupId = fs.statSync(dirs[0], { bigint: true }).ino;
    const dir = tmpdir(t);
    const sock = path.join(dir, 'ns.sock');
    const server = net.createServer((c) => c.on('data', () => c.end('MARK-ns-reply')));
    await new Promise<void>((r) => server.listen(sock, r));
    t.after(() => server.close());

    // the cgroup filter: only what the process in it sends, and the replies to it
    const cap = await startCapture(t, ['cgroup', `/${cg}`]);
    const { gen, procCgroup } = await runInside(dirs, sock, 'MARK-ns');
    // and one from outside the cgroup on the same socket: filtered out
    await new Promise((r) => spawn(SOCKGEN, ['connect', sock, 'MARK-outside'], { stdio: 'ignore' }).on('close', r));
    await sleep(300);
    const { code } = await cap.stop();
    assert.equal(code, 0);

    // the process was where the test put it: the v2 line, and the v1 one on a hybrid machine
    assert.equal(unifiedPathOf(procCgroup), `/${cg}`);
    if (v1) assert.match(procCgroup, new RegExp(`^\\d+:pids:/${cg.replace(/\./g, '\\.')}$`, 'm'));
    assert.equal(gen.pid, 1, 'pid 1 of its own pid namespace');
    assert.equal(gen.cgroup, Number(cgroupId));

    // everything the cgroup's processes sent passed: also their stdout and stderr to this test (libuv's
    // pipes are socket pairs); on the listener's socket, only the connection from inside
    const all = records(cap.file);
    for (const r of all) assert.ok(r.cgroupId === cgroupId || r.peerCgroupId === cgroupId, 'only the cgroup');
    const onSock = (r: (typeof all)[number]) => [r.localPath, r.peerPath].some((p) => p?.toString().replace(/\0+$/, '') === sock);
    const recs = all.filter(onSock);
    assert.deepEqual(recs.map((r) => r.payload.toString()).sort(), ['MARK-ns', 'MARK-ns-reply']);
    const sent = recs.find((r) => r.payload.toString() === 'MARK-ns')!;
    assert.equal(sent.nspid, 1);
    assert.notEqual(sent.pid, 1, 'its host pid');
    assert.equal(sent.pidns, gen.pidns);
    assert.equal(sent.mntns, gen.mntns);
    assert.notEqual(sent.pidns, Number(fs.statSync('/proc/self/ns/pid').ino), 'not the host pid namespace');
    assert.notEqual(sent.mntns, Number(fs.statSync('/proc/self/ns/mnt').ino), 'not the host mount namespace');
    assert.equal(sent.cgroupId, cgroupId);
    const reply = recs.find((r) => r.payload.toString() === 'MARK-ns-reply')!;
    assert.deepEqual([reply.peerCgroupId, reply.peerNspid, reply.peerPidns], [cgroupId, 1, gen.pidns]);
    // the cgroup's name is LXC's layout: the capture names the container "unixsock-ns-PID" in the records
    // (or, when its only send went out first, in an identity record)
    assert.ok(
      all.some((r) => r.cgroupId === cgroupId && r.containerId === name),
      'container id from the cgroup path',
    );
    const shown = tshark([
      '-r',
      cap.file,
      '-2',
      '-Y',
      `unixsock.container.id == "${name}" && unixsock.path == "${sock}"`,
      '-T',
      'fields',
      '-e',
      '_ws.col.Info',
    ]);
    assert.match(shown, new RegExp(`^sockgen ${sent.pid} \\[${name}\\] → node \\d+ `));
  });

  it('Statistics > Conversations and Endpoints by cgroup: one conversation per pair of cgroups, named from the file alone (4.0, 4.4, 4.6)', async (t) => {
    if (!needBpf(t) || !need(t, 'unshare', 'tshark')) return;
    const root = unifiedMount();
    if (!root) {
      if (CI) throw new Error('no cgroup v2 hierarchy is mounted');
      return t.skip('no cgroup v2 hierarchy is mounted');
    }
    // two "containers" (LXC's cgroup layout: the capture names them after the cgroup), and this test's own cgroup
    const srvName = `unixsock-conv-${process.pid}-srv`;
    const cliName = `unixsock-conv-${process.pid}-cli`;
    const [srvDir] = makeCgroups(t, `lxc.payload.${srvName}`, [root]);
    const [cliDir] = makeCgroups(t, `lxc.payload.${cliName}`, [root]);
    const hostPath = unifiedPathOf(fs.readFileSync('/proc/self/cgroup', 'utf8'));
    assert.ok(hostPath, 'this test runs in a cgroup v2 cgroup');
    const dir = tmpdir(t);
    const sock = path.join(dir, 'conv.sock');
    // the server: a Node listener inside the first cgroup, a reply per message
    const serve = `require('net').createServer((c) => c.on('data', (d) => c.write('pong ' + d))).listen(process.argv[1])`;
    const server = spawn('sh', ['-c', `echo $$ > '${srvDir}/cgroup.procs' && exec '${process.execPath}' -e "$0" "$1"`, serve, sock], { stdio: 'ignore' });
    t.after(() => server.kill());
    await waitForSocket(sock);

    const cap = await startCapture(t, ['path', sock]);
    // two connections from the second cgroup, one from this test's cgroup
    await runInside([cliDir], sock, 'MARK-conv-1');
    await runInside([cliDir], sock, 'MARK-conv-2');
    await new Promise((r) => spawn(SOCKGEN, ['connect', sock, 'MARK-conv-host'], { stdio: 'ignore' }).on('close', r));
    await sleep(300);
    const { code } = await cap.stop();
    assert.equal(code, 0);
    // the server leaves its cgroup now, so that the cleanup can remove it (the after hooks run in order)
    server.kill();
    await exited(server);

    // what the kernel saw: the cgroup ids, and the records between each pair of them
    const srvCg = fs.statSync(srvDir, { bigint: true }).ino;
    const cliCg = fs.statSync(cliDir, { bigint: true }).ino;
    // (identity records, sockType 0, name a container whose first records went out before its name: no traffic)
    const recs = records(cap.file).filter((r) => r.sockType !== 0);
    const host = recs.find((r) => r.payload.toString() === 'MARK-conv-host')!;
    assert.ok(host, 'the host client was captured');
    const hostCg = host.cgroupId;
    assert.notEqual(hostCg, srvCg);
    const name = new Map([
      [srvCg, srvName],
      [cliCg, cliName],
      [hostCg, `host:${hostPath}`],
    ]);
    const nameOf = (cg: bigint) => (cg === 0n ? 'unknown' : (name.get(cg) ?? `cgroup:${cg}`));
    // the file names every cgroup the capture met, and the unknown peer
    const fileNames = readPcapng(cap.file).names;
    for (const cg of [srvCg, cliCg, hostCg, 0n]) assert.equal(fileNames.get(viewAddressHex(cg))?.at(-1), nameOf(cg), `the name of cgroup ${cg}`);

    // Wireshark's view of the connections: the stream view fixes a connection's two addresses at its first record
    // (the client is the side without the bound path: its sender's cgroup, or its peer's when the server sent first;
    // a peer the kernel did not know then is cgroup 0, as can happen when the client sends before the server accepted)
    const conns = new Map<bigint, { client: bigint; server: bigint; n: number }>();
    for (const r of recs) {
      const fromServer = (r.localPath?.length ?? 0) > 0;
      const key = fromServer ? r.peerIno : r.ino;
      let c = conns.get(key);
      if (!c) {
        c = fromServer ? { client: r.peerCgroupId, server: r.cgroupId, n: 0 } : { client: r.cgroupId, server: r.peerCgroupId, n: 0 };
        conns.set(key, c);
      }
      c.n++;
    }
    assert.equal(conns.size, 3, 'three connections');
    const pairKey = (a: string, b: string) => [a, b].sort().join(' <-> ');
    const want = new Map<string, number>();
    const wantNum = new Map<string, number>();
    const perEndpoint = new Map<string, number>();
    for (const c of conns.values()) {
      const k = pairKey(nameOf(c.client), nameOf(c.server));
      want.set(k, (want.get(k) ?? 0) + c.n);
      const kn = pairKey(viewAddress(c.client), viewAddress(c.server));
      wantNum.set(kn, (wantNum.get(kn) ?? 0) + c.n);
      for (const cg of new Set([c.client, c.server])) perEndpoint.set(nameOf(cg), (perEndpoint.get(nameOf(cg)) ?? 0) + c.n);
    }
    t.diagnostic(`conversations the kernel's records make: ${[...want].map(([k, n]) => `${k}: ${n}`).join('; ')}`);

    // the prefs the profile "unixsock" sets: network names on, the system's resolver (DNS) off
    const prefs = fs
      .readFileSync(path.join(ROOT, 'wireshark/profile/preferences'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('nameres.'))
      .flatMap((l) => ['-o', l.replace(/:\s*/, ':')]);
    assert.deepEqual(prefs, ['-o', 'nameres.network_name:TRUE', '-o', 'nameres.use_external_name_resolver:FALSE']);

    /** The name pairs of a -z conv table with each pair's total frames, and an endpoints table's names with their packets. */
    const table = (out: string, title: string) => {
      const body = out.split(/={20,}/).find((s) => s.includes(title)) ?? '';
      return body
        .split('\n')
        .map((l) => l.replace(/\s(bytes|kB|MB)\b/g, '').trim())
        .filter((l) => /\d$/.test(l) && !l.startsWith('|') && !l.startsWith('Filter'))
        .map((l) => l.split(/\s+/));
    };
    await forEachWireshark(t, ({ tshark: ts }) => {
      const stats = (...opts: string[]) => ts(['-r', cap.file, ...opts, '-q', '-z', 'conv,ipv6', '-z', 'endpoints,ipv6']);
      // without names: each side is its cgroup's address
      const convNum = new Map(table(stats('-n'), 'IPv6 Conversations').map((c) => [pairKey(c[0], c[2]), Number(c[7])]));
      assert.deepEqual(convNum, wantNum);
      // with the profile's name resolution: the names the capture wrote into the file
      const named = stats(...prefs);
      const conv = new Map(table(named, 'IPv6 Conversations').map((c) => [pairKey(c[0], c[2]), Number(c[7])]));
      assert.deepEqual(conv, want, named);
      const ends = new Map(table(named, 'IPv6 Endpoints').map((c) => [c[0], Number(c[1])]));
      assert.deepEqual(ends, perEndpoint, named);
    });
  });

  it('pidns and netns filters: a process in its own pid and net namespaces filtered in and out, given as a file, as readlink prints it and as a number', async (t) => {
    if (!needBpf(t) || !need(t, 'unshare')) return;
    const dir = tmpdir(t);
    const sock = path.join(dir, 'nsf.sock');
    const server = net.createServer((c) => c.on('data', (d) => c.end(`MARK-reply-${d.toString()}`)));
    await new Promise<void>((r) => server.listen(sock, r));
    t.after(() => server.close());
    // the same abstract name inside and outside: abstract names are per network namespace
    const abstract = `unixsock-nsf-${process.pid}`;
    const sends = (text: string) => `${SOCKGEN} dgram-abstract ${abstract} >/dev/null && exec ${SOCKGEN} connect '${sock}' '${text}' >/dev/null`;

    // inside: pid 1 of a new pid namespace, in a new net namespace, waiting for the captures
    const inside = spawn('unshare', ['--pid', '--net', '--fork', 'sh', '-c', `read go && ${sends('MARK-in')}`], { stdio: ['pipe', 'ignore', 'pipe'] });
    let insideErr = '';
    inside.stderr.on('data', (b) => (insideErr += b));
    const insideDone = new Promise<number | null>((r) => inside.on('close', r));
    t.after(() => inside.kill('SIGKILL'));
    // unshare forks the namespaces' first process: its child
    let shPid = 0;
    for (let i = 0; i < 100 && !shPid; i++) {
      shPid = Number(fs.readFileSync(`/proc/${inside.pid}/task/${inside.pid}/children`, 'utf8').trim().split(' ')[0] || 0);
      if (!shPid) await sleep(20);
    }
    assert.ok(shPid, `unshare forked no child: ${insideErr}`);
    const nsOf = (pid: number | 'self', type: string) => {
      const link = fs.readlinkSync(`/proc/${pid}/ns/${type}`);
      return { link, ino: Number(/^\w+:\[(\d+)\]$/.exec(link)![1]) };
    };
    const pidns = nsOf(shPid, 'pid');
    const netns = nsOf(shPid, 'net');
    assert.notEqual(pidns.ino, nsOf('self', 'pid').ino, 'a pid namespace of its own');
    assert.notEqual(netns.ino, nsOf('self', 'net').ino, 'a net namespace of its own');

    // four captures at once, each namespace given another way; comm narrows the negated ones to this test's senders
    const [byPidns, byNetns, notPidns, notNetns] = await Promise.all([
      startCapture(t, ['--pidns', `/proc/${shPid}/ns/pid`]),
      startCapture(t, ['netns', netns.link]),
      startCapture(t, ['not', 'pidns', String(pidns.ino), 'and', 'comm', 'sockgen']),
      startCapture(t, ['not', 'netns', String(netns.ino), 'and', 'comm', 'sockgen']),
    ]);
    inside.stdin.end('go\n');
    const outside = spawn('sh', ['-c', sends('MARK-out')], { stdio: 'ignore' });
    assert.equal(await new Promise((r) => outside.on('close', r)), 0);
    assert.equal(await insideDone, 0, insideErr);
    await sleep(300);
    const recs: Rec[][] = [];
    for (const c of [byPidns, byNetns, notPidns, notNetns]) {
      assert.equal((await c.stop()).code, 0);
      recs.push(records(c.file));
    }
    // this test's messages in each capture, on its own socket and abstract name (the captures see the
    // whole machine, other tests' sockgen included)
    const paths = [sock, `\0${abstract}`];
    const ours = (rs: Rec[]) =>
      rs
        .filter((r) => [r.localPath, r.peerPath, r.destPath].some((p) => p !== undefined && paths.includes(p.toString().replace(/\0+$/, ''))))
        .map((r) => r.payload.toString())
        .filter((p) => /^MARK-(dgram-abstract|in|out|reply-MARK-(in|out))$/.test(p))
        .sort();
    const found = (rs: Rec[], text: string) => rs.filter((r) => r.payload.toString() === text);

    // pidns: what the process inside sent, and the replies to it (its socket's owner is the peer)
    assert.deepEqual(ours(recs[0]), ['MARK-dgram-abstract', 'MARK-in', 'MARK-reply-MARK-in']);
    for (const r of recs[0]) assert.ok(r.pidns === pidns.ino || r.peerPidns === pidns.ino, 'only the pid namespace');
    const sent = found(recs[0], 'MARK-in')[0];
    assert.deepEqual([sent.pidns, sent.peerPidns === pidns.ino], [pidns.ino, false]);
    assert.equal(found(recs[0], 'MARK-reply-MARK-in')[0].peerPidns, pidns.ino);
    // netns: the abstract datagram (both ends inside) and the connection to the host's listener: its
    // accepted end is made in the connecting socket's namespace, so the reply matches as well
    assert.deepEqual(ours(recs[1]), ['MARK-dgram-abstract', 'MARK-in', 'MARK-reply-MARK-in']);
    assert.ok(found(recs[1], 'MARK-dgram-abstract').every((r) => r.pidns === pidns.ino));
    assert.ok(
      recs[1].every((r) => r.pidns === pidns.ino || r.peerPidns === pidns.ino),
      'nothing else on the machine runs in that net namespace',
    );
    // negated: the outside sockgen's traffic only (its abstract datagram and its connection)
    for (const rs of [recs[2], recs[3]]) assert.deepEqual(ours(rs), ['MARK-dgram-abstract', 'MARK-out', 'MARK-reply-MARK-out']);
    for (const r of recs[2]) assert.ok(r.pidns !== pidns.ino && r.peerPidns !== pidns.ino);
    for (const r of recs[3]) assert.ok(r.pidns !== pidns.ino && r.peerPidns !== pidns.ino);
  });

  it('pidns and netns: bad namespaces are one-line errors with exit 2', (t) => {
    if (!needBpf(t)) return;
    const cases: [string[], RegExp][] = [
      [['pidns', '0'], /^unixsock: pidns filter: "0" is not a namespace inode number/],
      [['netns', fs.readlinkSync('/proc/self/ns/pid')], /^unixsock: netns filter: "pid:\[\d+\]" is a pid namespace, not a net one/],
      [['--pidns', '/proc/self/ns/net'], /^unixsock: pidns filter: "\/proc\/self\/ns\/net" is a net namespace, not a pid one/],
      [['netns', '/etc/passwd'], /^unixsock: netns filter: "\/etc\/passwd" is not a namespace file/],
      [['--netns', '/nonexistent'], /^unixsock: netns filter: cannot open "\/nonexistent": ENOENT/],
      [['pidns', 'blue'], /^unixsock: pidns filter: "blue" is not a namespace/],
    ];
    for (const [args, re] of cases) {
      const r = spawnSync(EXE, ['-w', '/dev/null', ...args], { encoding: 'utf8' });
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });
});
