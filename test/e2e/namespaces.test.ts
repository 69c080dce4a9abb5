// End-to-end: container identity without a container runtime. A process in
// its own pid and mount namespaces (unshare) and in a cgroup the test makes,
// named the way LXC names its containers' cgroups (/lxc.payload.NAME), on the
// v2 hierarchy (whose ids the kernel reports) and, on a hybrid machine like
// this one, in a v1 hierarchy too; it talks to a listener in the test.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { unifiedMount, unifiedPathOf } from '../../src/cgroup';
import { CI, SOCKGEN, need, needBpf, records, sleep, startCapture, tmpdir, tshark } from '../helpers/harness';

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
});
