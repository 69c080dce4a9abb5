// End-to-end: Docker for real. A dockerd started by the test (on
// /run/docker.sock when that is free, else on a socket of its own: the test
// says which), the docker CLI talking HTTP to it, containers of a busybox image made offline whose
// processes talk to host listeners over bind-mounted sockets; captured by the
// real engine and decoded by tshark with wireshark/unixsock.lua.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { startDockerd, type Dockerd } from '../helpers/docker';
import { unifiedMount, unifiedPathOf } from '../../src/cgroup';
import { LUA, ROOT, SOCKGEN, need, needBpf, records, sleep, startCapture, tmpdir, tshark } from '../helpers/harness';
import { XSession } from '../helpers/xgui';
import { readPcapng } from '../helpers/pcapng-read';
import { viewAddressHex } from '../helpers/view';

const lines = (s: string) => s.split('\n').filter(Boolean);
const SHOTS = process.env.UNIXSOCK_SCREENSHOTS;

/**
 * UNIXSOCK_SCREENSHOTS=DIR (scripts/screenshots.sh): Wireshark opens the capture with unixsock.lua
 * under a private Xvfb and the screen is saved as DIR/NAME, the Info column naming the containers.
 */
async function screenshot(t: TestContext, file: string, name: string) {
  if (!SHOTS) return;
  const home = tmpdir(t);
  const x = new XSession({ ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config') }, path.join(ROOT, 'build', 'gui-failure.png'));
  fs.mkdirSync(path.join(home, '.config', 'wireshark'), { recursive: true });
  fs.writeFileSync(
    path.join(home, '.config', 'wireshark', 'recent'),
    'gui.geometry_main_x: 0\ngui.geometry_main_y: 0\ngui.geometry_main_width: 1380\ngui.geometry_main_height: 560\n' +
      'column.width: %m, 40, %t, 90, %s, 90, %d, 90, %p, 60, %L, 50, %i, 900\n',
  );
  await x.start(t, 1400, 600);
  t.after(() => x.stop());
  const ws = spawn('wireshark', ['-X', `lua_script:${LUA}`, '-r', file], { env: x.env, stdio: 'ignore' });
  t.after(() => ws.kill());
  await x.window(/\.pcapng/);
  await sleep(3000); // the packet list fills after the window appears
  x.screenshot(path.join(SHOTS, name));
}

/**
 * A container that waits for the test (a file "go" in the shared folder) before it runs `script`: its cgroup
 * exists from the start, so the test reads its id before any message, and a capture filtered on the container
 * can start in between. go() lets it run, waits for it to end, returns its output and removes it.
 */
function startWaiting(d: Dockerd, name: string, shared: string, script: string) {
  const id = d.docker([
    'run',
    '-d',
    '--network',
    'none',
    '--name',
    name,
    '-v',
    `${shared}:/srv`,
    d.image,
    '/bin/sh',
    '-c',
    `while [ ! -e /srv/go-${name} ]; do sleep 0.02; done; ${script}`,
  ]);
  const root = unifiedMount();
  assert.ok(root, 'a cgroup v2 hierarchy is mounted');
  // Docker's cgroupfs driver on this hybrid (v1 + v2) machine: /docker/<id> (src/cgroup.ts has the other layouts)
  const cgroupId = fs.statSync(path.join(root, 'docker', id), { bigint: true }).ino;
  return {
    id,
    cgroupId,
    async go(): Promise<string> {
      fs.writeFileSync(path.join(shared, `go-${name}`), '');
      const code = await d.dockerAsync(['wait', name]);
      const out = await d.dockerAsync(['logs', name]);
      d.docker(['rm', name]);
      assert.equal(code, '0', out);
      return out;
    },
  };
}

describe('Docker, end to end', () => {
  // one daemon for the whole file (about 1.5 s to answer, 6 s with the image on a loaded machine), stopped by pid at the end
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups) await c();
  });
  let daemon: Promise<Dockerd | undefined> | undefined;
  const dockerd = (t: TestContext) => (daemon ??= startDockerd(t, (fn) => cleanups.push(fn)));

  it('captures docker version, ps and inspect over the API socket and decodes the HTTP calls and JSON bodies', async (t) => {
    if (!needBpf(t) || !need(t, 'tshark')) return;
    const d = await dockerd(t);
    if (!d) return;
    const name = `unixsock-inspect-${process.pid}`;
    const id = d.docker(['create', '--network', 'none', '--name', name, d.image, '/bin/sh', '-c', 'true']);
    assert.match(id, /^[0-9a-f]{64}$/);
    // only this test's daemon: the machine may run other dockerds and captures. The capture asks it for
    // container names too (DOCKER_HOST: on /run/docker.sock it would anyway): neither those requests
    // nor dockerd's replies to them belong in the capture. (On /run/docker.sock the CLI is called as a
    // user calls it: no -H, no DOCKER_HOST.)
    const cap = await startCapture(t, ['path', d.sock], undefined, { DOCKER_HOST: d.host });
    const version = JSON.parse(d.docker(['version', '--format', '{{json .Server}}'])) as { Version: string };
    const ps = d.docker(['ps', '-a', '--no-trunc', '--format', '{{.ID}} {{.Names}}']);
    assert.match(ps, new RegExp(`^${id} ${name}$`, 'm'));
    d.docker(['inspect', name]);
    await sleep(200);
    const { code } = await cap.stop();
    assert.equal(code, 0);

    // the CLI's requests: on /run/docker.sock every unixsock capture on the machine (other tests') asks
    // this dockerd for names too
    const reqs = lines(
      tshark([
        '-r',
        cap.file,
        '-Y',
        'http.request && unixsock.comm == "docker"',
        '-T',
        'fields',
        '-e',
        'http.request.method',
        '-e',
        'http.request.uri',
        '-e',
        'unixsock.comm',
      ]),
    );
    const uris = reqs.map((l) => l.split('\t')[1].replace(/^\/v[0-9.]+/, ''));
    // the API version the CLI negotiated is in the request paths (/v1.41/...): whatever it is, these are the calls
    for (const want of ['/version', '/containers/json?all=1', `/containers/${name}/json`]) {
      assert.ok(uris.includes(want), `${want} among ${uris.join(' ')}`);
    }
    for (const l of reqs) assert.equal(l.split('\t')[2], 'docker');
    // the JSON bodies: the version reply names the daemon's version, the list and inspect replies the container's id
    const jsonStrings = tshark(['-r', cap.file, '-Y', 'json', '-T', 'fields', '-e', 'json.value.string']);
    assert.ok(jsonStrings.includes(version.Version), `daemon version ${version.Version} in a JSON body`);
    const withId = lines(
      tshark(['-r', cap.file, '-Y', `json.value.string == "${id}"`, '-T', 'fields', '-e', 'http.response_for.uri', '-e', 'http.request_in']),
    );
    assert.ok(withId.length >= 2, 'the container id in the list and inspect replies');
    const resp = lines(
      tshark([
        '-r',
        cap.file,
        '-Y',
        'http.response && unixsock.peer.comm == "docker"',
        '-T',
        'fields',
        '-e',
        'http.response.code',
        '-e',
        'unixsock.comm',
        '-e',
        'unixsock.peer.comm',
      ]),
    );
    assert.ok(resp.length >= 3);
    for (const r of resp) assert.deepEqual(r.split('\t'), ['200', 'dockerd', 'docker']);
    const capPid = cap.proc.pid;
    assert.ok(
      records(cap.file).every((r) => r.pid !== capPid && r.peerPid !== capPid),
      'nothing the capture sent or was sent',
    );
  });

  it("shows a container process talking to a host listener over a bind-mounted socket, with the container's id, name and in-container pid", async (t) => {
    if (!needBpf(t) || !need(t, 'tshark')) return;
    const d = await dockerd(t);
    if (!d) return;
    const shared = path.join(d.dir, 'shared');
    fs.mkdirSync(shared, { recursive: true });
    const sock = path.join(shared, 'app.sock');
    const got: string[] = [];
    const server = net.createServer((c) => {
      c.on('data', (b) => {
        got.push(b.toString());
        c.end('MARK-reply');
      });
    });
    await new Promise<void>((r) => server.listen(sock, r));
    t.after(() => server.close());
    const name = `unixsock-web-${process.pid}`;
    // DOCKER_HOST: the capture asks this test's dockerd for names (it would ask /run/docker.sock)
    const cap = await startCapture(t, ['path', sock], undefined, { DOCKER_HOST: d.host });
    // inside the container the socket is /srv/app.sock; the kernel (and the capture) see the listener's own path.
    // Two connections: the first goes out before the capture has resolved the new cgroup (ids only, then an
    // identity record names it), the second carries the names in its own options.
    const c = startWaiting(d, name, shared, '/sockgen connect /srv/app.sock MARK-first && sleep 1 && /sockgen connect /srv/app.sock MARK-second');
    const out = await c.go();
    const gens = lines(out).map((l) => JSON.parse(l) as { pid: number; len: number });
    const { id, cgroupId } = c;
    await sleep(300);
    const { code } = await cap.stop();
    assert.equal(code, 0);
    assert.deepEqual(got, ['MARK-first', 'MARK-second']);
    for (const g of gens) assert.equal(g.len, 'MARK-reply'.length);

    // the kernel's fields, read with the reference decoder
    const recs = records(cap.file);
    const sent = recs.filter((r) => r.comm === 'sockgen');
    assert.equal(sent.length, 2);
    for (const [i, r] of sent.entries()) {
      // what the process calls itself inside the container (getpid(), printed by sockgen) is NSpid
      assert.equal(r.nspid, gens[i].pid, 'pid inside the container');
      assert.notEqual(r.pid, r.nspid, 'its host pid differs');
      assert.equal(r.cgroupId, cgroupId, "the container's cgroup");
      assert.notEqual(r.pidns, Number(fs.readlinkSync('/proc/self/ns/pid').replace(/\D/g, '')), 'its own pid namespace');
      assert.notEqual(r.mntns, Number(fs.readlinkSync('/proc/self/ns/mnt').replace(/\D/g, '')), 'its own mount namespace');
    }
    assert.equal(sent[1].containerId, id, 'the second connection carries the id');
    assert.equal(sent[1].containerName, name, 'and the name');
    const replies = recs.filter((r) => r.comm === 'node' && r.payload.toString() === 'MARK-reply');
    assert.equal(replies.length, 2);
    assert.equal(replies[1].peerCgroupId, cgroupId, "the reply's peer is the container");
    assert.equal(replies[1].peerNspid, gens[1].pid);
    assert.equal(replies[1].peerContainerName, name);
    const identity = recs.filter((r) => r.sockType === 0);
    assert.ok(
      identity.some((r) => r.cgroupId === cgroupId && r.containerId === id && r.containerName === name),
      'an identity record names it',
    );

    // Wireshark: every record of the container named (the first one through the identity record), filterable, in Info
    const f = (filter: string, ...fields: string[]) => lines(tshark(['-r', cap.file, '-2', '-Y', filter, '-T', 'fields', ...fields.flatMap((x) => ['-e', x])]));
    const named = f(`unixsock.container.name == "${name}" && unixsock.type != 0`, 'unixsock.comm', 'unixsock.nspid', 'unixsock.container.id', '_ws.col.Info');
    assert.equal(named.length, 2, named.join('\n'));
    for (const [i, l] of named.entries()) {
      const [comm, nspid, cid, info] = l.split('\t');
      assert.deepEqual([comm, Number(nspid), cid], ['sockgen', gens[i].pid, id]);
      assert.match(info, new RegExp(`^sockgen ${sent[i].pid} \\[${name}\\] → node \\d+ `));
    }
    const peerNamed = f(`unixsock.peer.container.name == "${name}"`, 'unixsock.comm', '_ws.col.Info');
    assert.equal(peerNamed.length, 2, peerNamed.join('\n'));
    for (const l of peerNamed) assert.match(l, new RegExp(`^node\tnode \\d+ → sockgen \\d+ \\[${name}\\] `));
    // the identity records: one when the id is known, one more when the name is (docs/link-header.md)
    const ident = f(`unixsock.cgroup == ${cgroupId} && unixsock.type == 0`, '_ws.col.Info');
    assert.ok(ident.length >= 1 && ident.length <= 2, ident.join('\n'));
    assert.equal(ident[ident.length - 1], `Container ${name}: cgroup ${cgroupId} (${id})`);
    // Statistics > Conversations > IPv6 with the profile's name resolution: the container by its name, the listener
    // (this test) by its host cgroup, from the file's name resolution blocks; the container's address was named
    // by its short id first (its first records went out before the runtime answered), then by its name: the last wins
    const hostCg = replies[0].cgroupId;
    const hostPath = unifiedPathOf(fs.readFileSync('/proc/self/cgroup', 'utf8'));
    const names = readPcapng(cap.file).names;
    assert.deepEqual(names.get(viewAddressHex(cgroupId))?.at(-1), name);
    assert.deepEqual(names.get(viewAddressHex(hostCg))?.at(-1), `host:${hostPath}`);
    const conv = tshark(['-r', cap.file, '-o', 'nameres.network_name:TRUE', '-o', 'nameres.use_external_name_resolver:FALSE', '-q', '-z', 'conv,ipv6']);
    const between = recs.filter((r) => r.sockType !== 0).length;
    const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const [a, b] = [esc(name), esc(`host:${hostPath}`)];
    // the columns: both names, frames and bytes each way, then the total frames
    assert.match(conv, new RegExp(`^(${a}\\s+<->\\s+${b}|${b}\\s+<->\\s+${a})\\s+(\\d+(\\s+bytes)?\\s+){4}${between}\\s`, 'm'), conv);
    await screenshot(t, cap.file, 'wireshark-containers.png');
  });

  it("filters by container name in the kernel: only that container's messages, as sender or as peer", async (t) => {
    if (!needBpf(t) || !need(t, 'tshark')) return;
    const d = await dockerd(t);
    if (!d) return;
    const shared = path.join(d.dir, 'shared-filter');
    fs.mkdirSync(shared, { recursive: true });
    const sock = path.join(shared, 'app.sock');
    const server = net.createServer((c) => c.on('data', () => c.end('MARK-reply')));
    await new Promise<void>((r) => server.listen(sock, r));
    t.after(() => server.close());
    const target = `unixsock-target-${process.pid}`;
    const other = `unixsock-other-${process.pid}`;
    const a = startWaiting(d, target, shared, '/sockgen connect /srv/app.sock MARK-target');
    const b = startWaiting(d, other, shared, '/sockgen connect /srv/app.sock MARK-other');
    // the name is resolved before the probes load (the container runs: its cgroup exists)
    const cap = await startCapture(t, ['container', target], undefined, { DOCKER_HOST: d.host });
    await Promise.all([a.go(), b.go()]);
    // and a host process on the same socket: not in the container either
    await new Promise((r) => execFile(SOCKGEN, ['connect', sock, 'MARK-host'], r));
    await sleep(300);
    const { code } = await cap.stop();
    assert.equal(code, 0);
    const recs = records(cap.file).filter((r) => r.sockType !== 0);
    const texts = recs.map((r) => r.payload.toString()).sort();
    // other helpers' traffic cannot pass this filter: only the container's send and the reply to it
    assert.deepEqual(texts, ['MARK-reply', 'MARK-target']);
    for (const r of recs) assert.ok(r.cgroupId === a.cgroupId || r.peerCgroupId === a.cgroupId);
    // named in its record, or (sent before the capture had its name) in an identity record
    assert.ok(records(cap.file).some((r) => r.cgroupId === a.cgroupId && r.containerName === target));
  });
});
