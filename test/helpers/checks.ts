// The traffic every capture-engine test generates (the same on this kernel and
// on the kernels of the qemu matrix), and the checks of every record field.
import assert from 'node:assert/strict';
import { LINK_VERSION } from '../../src/generated/vocab';
import { HFLAG } from '../../src/link-header';
import type { Gen, Rec } from './harness';
import type { SyscallNumbers } from './kernel';

/** sockgen's runs, by what they exercise. */
export interface Generated {
  stream: Gen;
  dgram: Gen;
  seq: Gen;
  writev: Gen;
  sendmsg: Gen;
  mmsg: Gen;
  rights: Gen;
  creds: Gen;
  sendfile: Gen;
}

/** sockgen arguments for each key of Generated (the dgram name gets a unique suffix). */
export const GENERATORS: Record<keyof Generated, string[]> = {
  stream: ['stream-pair'],
  dgram: ['dgram-abstract'],
  seq: ['seqpacket'],
  writev: ['writev', '200'],
  sendmsg: ['sendmsg-iov', '300'],
  mmsg: ['sendmmsg', '5'],
  rights: ['rights'],
  creds: ['creds'],
  sendfile: ['sendfile'],
};

export const STREAM = 1;
export const DGRAM = 2;
export const SEQPACKET = 5;

/** sockgen's JSON report reaches the test through a socketpair too (Node's stdio pipes): skip it. */
export function traffic(recs: Rec[]): Rec[] {
  return recs.filter((r) => !r.payload.toString().startsWith('{"mode"'));
}

export function mine(recs: Rec[], pid: number): Rec[] {
  return traffic(recs).filter((r) => r.pid === pid);
}

function commonFields(r: Rec, g: Gen) {
  assert.equal(r.pid, g.pid);
  assert.equal(r.tid, g.pid, 'single-threaded sender: tid == pid');
  assert.equal(r.uid, g.uid);
  assert.equal(r.gid, g.gid);
  assert.equal(r.comm, 'sockgen');
  assert.equal(r.version, LINK_VERSION);
  assert.ok(r.tsNs > 0n);
  identity(r, g);
}

/**
 * The container identity fields (header version 2) against what sockgen read
 * of itself: /proc/self/ns/{pid,mnt} and its cgroup directory's inode. It runs
 * in the namespaces it was started in, so its pid there is its pid.
 */
function identity(r: Rec, g: Gen) {
  assert.equal(r.pidns, g.pidns, 'pid namespace');
  assert.equal(r.mntns, g.mntns, 'mount namespace');
  assert.equal(r.nspid, g.pid, 'pid in its own namespace');
  if (g.cgroup) assert.equal(r.cgroupId, BigInt(g.cgroup), 'cgroup v2 id');
  else assert.ok(r.cgroupId > 0n, 'a cgroup id (the root is 1) even where no cgroup2 file system is mounted');
}

/** Runs one group of assertions; a failure names the group. */
function part(name: string, fn: () => void) {
  try {
    fn();
  } catch (e) {
    if (e instanceof assert.AssertionError) e.message = `${name}: ${e.message}`;
    throw e;
  }
}

/**
 * Every field of every record of the GENERATORS traffic. `SYS`: the system call
 * numbers the records carry (RECORD_SYSCALLS: x86_64's, on every architecture),
 * `strategy`: the strategy number the records must carry.
 */
export function checkAll(g: Generated, all: Rec[], strategy: number, SYS: SyscallNumbers) {
  // identity records (sock_type 0) name a container another sockgen ran in (the machine is
  // shared: a Docker test's container passes the comm filter too); they are not messages
  const recs = all.filter((r) => r.sockType !== 0);
  for (const r of recs) assert.equal(r.strategy, strategy, 'records carry the strategy that made them');
  part('stream socketpair', () => {
    // stream socketpair: parent write() -> child, child send() -> parent
    const s = g.stream;
    const sp = mine(recs, s.pid);
    assert.equal(sp.length, 1);
    commonFields(sp[0], s);
    assert.equal(sp[0].sockType, STREAM);
    assert.equal(sp[0].syscall, SYS.write);
    assert.equal(sp[0].payload.toString(), s.payload);
    assert.equal(sp[0].msgLen, s.payload.length);
    assert.equal(BigInt(s.ino), sp[0].ino);
    assert.equal(BigInt(s.peerIno), sp[0].peerIno);
    assert.equal(sp[0].localPath, undefined, 'socketpair ends are unnamed');
    assert.equal(sp[0].peerPath, undefined);
    assert.equal(sp[0].direction, undefined, 'no bound path: no direction flag');
    const reply = mine(recs, s.child);
    assert.equal(reply.length, 1);
    assert.equal(reply[0].payload.toString(), s.reply);
    assert.equal(reply[0].syscall, SYS.sendto, 'send() is sendto(2) (glibc)');
    assert.equal(reply[0].ino, BigInt(s.peerIno));
    assert.equal(reply[0].peerIno, BigInt(s.ino));
    // the child's peer is the parent, who wrote on the other end first
    assert.equal(reply[0].peerPid, s.pid);
    assert.equal(reply[0].peerComm, 'sockgen');
    // and who the parent is, as it was seen on its socket
    assert.deepEqual([reply[0].peerPidns, reply[0].peerMntns, reply[0].peerNspid], [s.pidns, s.mntns, s.pid]);
    if (s.cgroup) assert.equal(reply[0].peerCgroupId, BigInt(s.cgroup));
    assert.deepEqual([reply[0].pidns, reply[0].nspid], [s.pidns, s.child], 'the child in the same namespace');
  });
  part('abstract dgram', () => {
    // abstract dgram, unconnected sendto()
    const d = g.dgram;
    const dp = mine(recs, d.pid);
    assert.equal(dp.length, 1);
    commonFields(dp[0], d);
    assert.equal(dp[0].sockType, DGRAM);
    assert.equal(dp[0].syscall, SYS.sendto);
    assert.equal(dp[0].payload.toString(), d.payload);
    assert.deepEqual(dp[0].destPath, Buffer.concat([Buffer.from([0]), Buffer.from(d.name)]));
    assert.equal(dp[0].peerIno, 0n, 'unconnected: no peer socket');
  });
  part('seqpacket', () => {
    // seqpacket: three messages, boundaries kept
    const q = g.seq;
    const qp = mine(recs, q.pid);
    assert.deepEqual(
      qp.map((r) => r.payload.toString()),
      ['MARK-seqpacket-0', 'MARK-seqpacket-1', 'MARK-seqpacket-2'],
    );
    for (const r of qp) assert.equal(r.sockType, SEQPACKET);
  });
  part('writev/sendmsg iovecs', () => {
    // writev with 200 iovecs and sendmsg with 300: every byte, in order
    for (const [k, sys] of [
      ['writev', SYS.writev],
      ['sendmsg', SYS.sendmsg],
    ] as const) {
      const w = g[k];
      const wp = mine(recs, w.pid);
      assert.equal(wp.length, 1, k);
      assert.equal(wp[0].syscall, sys);
      assert.equal(wp[0].msgLen, w.len);
      assert.equal(wp[0].payload.toString(), w.payload, `${k}: payload of many iovecs`);
    }
  });
  part('sendmmsg', () => {
    // sendmmsg: one record per message, each with its own bytes
    const m = g.mmsg;
    const mp = mine(recs, m.pid);
    assert.equal(m.count, 5);
    assert.deepEqual(
      mp.map((r) => r.payload.toString()),
      [0, 1, 2, 3, 4].map((i) => `MARK-mmsg-${i}`),
    );
    for (const r of mp) {
      assert.equal(r.syscall, SYS.sendmmsg);
      assert.equal(r.sockType, DGRAM);
    }
  });
  part('SCM_RIGHTS/SCM_CREDENTIALS', () => {
    // SCM_RIGHTS and SCM_CREDENTIALS
    const rr = mine(recs, g.rights.pid);
    assert.equal(rr.length, 1);
    assert.equal(rr[0].payload.toString(), 'MARK-rights');
    assert.deepEqual(rr[0].rights, [0, 1]);
    assert.ok(rr[0].flags & HFLAG.HAS_CTRL);
    const cr = g.creds;
    const crr = mine(recs, cr.pid);
    assert.equal(crr.length, 1);
    assert.deepEqual(crr[0].creds, { pid: cr.pid, uid: cr.uid, gid: cr.gid });
  });
  part('sendfile', () => {
    // sendfile: a record with the length, flagged unreadable, never a silent gap
    const sf = g.sendfile;
    const sfr = mine(recs, sf.pid);
    assert.equal(sfr.length, 1);
    assert.equal(sfr[0].msgLen, sf.len);
    assert.equal(sfr[0].payload.length, 0);
    assert.ok(sfr[0].flags & HFLAG.NO_PAYLOAD);
    assert.equal(sfr[0].syscall, SYS.sendfile);
  });
  part('filter', () => {
    // nothing else slipped through the comm filter
    for (const r of recs) assert.ok(r.comm === 'sockgen' || r.peerComm === 'sockgen');
  });
}
