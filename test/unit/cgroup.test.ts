import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { cgroupIdOf, cgroupLevel, containerOfCgroup, scanCgroups, unifiedMount, unifiedPathOf } from '../../src/cgroup';

const ID = 'a3f1c2d4e5b60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a';
const POD = '5d3c0d3a-1f6b-4e0e-9a55-7d9c1a2b3c4d';

describe('container of a cgroup path', () => {
  // each layout as the runtime writes it (the runtimes' docs and a live
  // /proc/PID/cgroup of each); the Docker one is also checked live in
  // test/e2e/containers.test.ts
  const cases: [string, string, ReturnType<typeof containerOfCgroup>][] = [
    ['docker, cgroupfs (v1 and v2)', `/docker/${ID}`, { runtime: 'docker', id: ID, cgroup: `/docker/${ID}` }],
    ['docker, systemd driver', `/system.slice/docker-${ID}.scope`, { runtime: 'docker', id: ID, pod: undefined, cgroup: `/system.slice/docker-${ID}.scope` }],
    [
      'kubernetes, systemd driver, containerd',
      `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD.replace(/-/g, '_')}.slice/cri-containerd-${ID}.scope`,
      {
        runtime: 'containerd',
        id: ID,
        pod: POD,
        cgroup: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD.replace(/-/g, '_')}.slice/cri-containerd-${ID}.scope`,
      },
    ],
    [
      'kubernetes, systemd driver, cri-o',
      `/kubepods.slice/kubepods-pod${POD.replace(/-/g, '_')}.slice/crio-${ID}.scope`,
      { runtime: 'cri-o', id: ID, pod: POD, cgroup: `/kubepods.slice/kubepods-pod${POD.replace(/-/g, '_')}.slice/crio-${ID}.scope` },
    ],
    [
      'kubernetes, cgroupfs driver (v1)',
      `/kubepods/besteffort/pod${POD}/${ID}`,
      { runtime: 'kubernetes', id: ID, pod: POD, cgroup: `/kubepods/besteffort/pod${POD}/${ID}` },
    ],
    ['kubernetes, guaranteed QoS', `/kubepods/pod${POD}/${ID}`, { runtime: 'kubernetes', id: ID, pod: POD, cgroup: `/kubepods/pod${POD}/${ID}` }],
    [
      'podman, systemd, container leaf',
      `/machine.slice/libpod-${ID}.scope/container`,
      { runtime: 'podman', id: ID, pod: undefined, cgroup: `/machine.slice/libpod-${ID}.scope` },
    ],
    [
      'podman, rootless',
      `/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${ID}.scope`,
      { runtime: 'podman', id: ID, pod: undefined, cgroup: `/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${ID}.scope` },
    ],
    ['podman, cgroupfs', `/libpod_parent/libpod-${ID}`, { runtime: 'podman', id: ID, pod: undefined, cgroup: `/libpod_parent/libpod-${ID}` }],
    [
      'systemd-nspawn',
      '/machine.slice/machine-web\\x2d1.scope/payload',
      { runtime: 'systemd-nspawn', id: 'web-1', pod: undefined, cgroup: '/machine.slice/machine-web\\x2d1.scope' },
    ],
    ['containerd (ctr), cgroupfs', '/default/redis-1', { runtime: 'containerd', id: 'redis-1', cgroup: '/default/redis-1' }],
    ['nerdctl, systemd', `/system.slice/nerdctl-${ID}.scope`, { runtime: 'containerd', id: ID, pod: undefined, cgroup: `/system.slice/nerdctl-${ID}.scope` }],
    ['lxc', '/lxc/web', { runtime: 'lxc', id: 'web', cgroup: '/lxc/web' }],
    ['lxc 4 on v2', '/lxc.payload.web/init.scope', { runtime: 'lxc', id: 'web', pod: undefined, cgroup: '/lxc.payload.web' }],
    ['systemd inside a docker container', `/docker/${ID}/init.scope`, { runtime: 'docker', id: ID, cgroup: `/docker/${ID}` }],
  ];
  for (const [name, p, want] of cases) {
    it(name, () => assert.deepEqual(containerOfCgroup(p), want));
  }

  it('host cgroups and odd input are no container', () => {
    for (const p of [
      '/',
      '/user.slice/user-0.slice/session-1.scope',
      '/system.slice/docker.service', // dockerd itself
      '/system.slice/containerd.service',
      `/machine.slice/libpod-conmon-${ID}.scope`, // podman's monitor, not the container
      '/docker', // the parent of all containers
      `/docker/${ID.slice(0, 63)}`, // not a full id
      `/process_api/${ID.slice(0, 32)}`,
      '',
      'docker/' + ID, // not a path
      '/kubepods/besteffort', // a QoS class, no pod
    ]) {
      assert.equal(containerOfCgroup(p), undefined, p);
    }
  });
});

describe('cgroup files of this machine', () => {
  it('reads the v2 line of /proc/PID/cgroup, on a hybrid and a pure v2 machine', () => {
    assert.equal(unifiedPathOf(`9:name=systemd:/\n4:memory:/docker/${ID}\n0::/docker/${ID}\n`), `/docker/${ID}`);
    assert.equal(unifiedPathOf('0::/init.scope\n'), '/init.scope');
    assert.equal(unifiedPathOf('4:memory:/x\n'), undefined);
  });

  it('finds the v2 hierarchy in mountinfo, hybrid or pure', () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'unixsock-cg-'));
    try {
      const hybrid = path.join(d, 'hybrid');
      fs.writeFileSync(
        hybrid,
        [
          '30 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755',
          '31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate',
          '32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd',
        ].join('\n'),
      );
      assert.equal(unifiedMount(hybrid), '/sys/fs/cgroup/unified');
      const pure = path.join(d, 'pure');
      fs.writeFileSync(pure, '30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n');
      assert.equal(unifiedMount(pure), '/sys/fs/cgroup');
      const none = path.join(d, 'none');
      fs.writeFileSync(none, '30 25 0:26 / /sys/fs/cgroup rw shared:4 - tmpfs tmpfs rw\n');
      assert.equal(unifiedMount(none), undefined);
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it("maps this process's cgroup id to its path by walking the real hierarchy", (t) => {
    const root = unifiedMount();
    if (!root) return t.skip('no cgroup v2 hierarchy mounted');
    const mine = unifiedPathOf(fs.readFileSync('/proc/self/cgroup', 'utf8'));
    assert.ok(mine);
    const id = cgroupIdOf(path.join(root, mine));
    assert.ok(id && id > 0n);
    assert.equal(scanCgroups(root).get(id), mine);
  });

  it('levels count path segments below the root', () => {
    assert.equal(cgroupLevel('/'), 0);
    assert.equal(cgroupLevel(`/docker/${ID}`), 2);
    assert.equal(cgroupLevel(`/docker/${ID}/`), 2);
  });
});
