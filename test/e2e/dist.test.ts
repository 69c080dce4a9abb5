// The install bundles (`make dist`, `make NODE_ARCH=arm64 dist`): what a user
// copies to another machine and installs with install-extcap.sh --no-build.
// The host's bundle is installed for a user whose HOME is a temporary folder
// and Wireshark's own tshark must then list the interface; the arm64 bundle
// holds arm64 ELF files, and its executable answers Wireshark's first query
// when run here through qemu user-mode emulation (its captures are proven on
// arm64 kernels by kernels.test.ts).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { ROOT, need, tmpdir } from '../helpers/harness';

const HOST_ARCH = process.arch;
/** ELF e_machine of each architecture */
const MACHINE: Record<string, number> = { x64: 62, arm64: 183 };

function dist(t: Parameters<typeof tmpdir>[0], arch: string): string {
  execFileSync('make', ['-s', '-j2', `NODE_ARCH=${arch}`, 'dist'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const tgz = path.join(ROOT, 'build', `unixsock-${arch}.tar.gz`);
  const dir = tmpdir(t);
  execFileSync('tar', ['-xzf', tgz, '-C', dir]);
  return path.join(dir, 'unixsock');
}

function elfMachine(file: string): number {
  const b = Buffer.alloc(20);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, b, 0, 20, 0);
  } finally {
    fs.closeSync(fd);
  }
  assert.equal(b.subarray(0, 4).toString('latin1'), '\x7fELF', `${file} is not an ELF file`);
  return b.readUInt16LE(18);
}

describe('install bundles (make dist)', () => {
  it(`the ${HOST_ARCH} bundle installs with install-extcap.sh --no-build and tshark lists the interface`, (t) => {
    if (!need(t, 'tshark')) return;
    const u = dist(t, HOST_ARCH);
    for (const f of ['extcap/unixsock', 'build/unixsock.node']) assert.equal(elfMachine(path.join(u, f)), MACHINE[HOST_ARCH], f);
    const home = tmpdir(t);
    const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), XDG_DATA_HOME: path.join(home, 'share') };
    const out = execFileSync('bash', [path.join(u, 'scripts', 'install-extcap.sh'), '--no-build'], { env, encoding: 'utf8' });
    assert.match(out, /installed .*\/extcap\/unixsock\n/);
    assert.match(execFileSync('tshark', ['-D'], { env, encoding: 'utf8' }), /\. unixsock \(Unix sockets\)/);
  });

  it('the arm64 bundle holds arm64 files, and its executable answers --extcap-interfaces under qemu-aarch64', (t) => {
    if (HOST_ARCH === 'arm64' || !need(t, 'aarch64-linux-gnu-gcc', 'qemu-aarch64')) return;
    const u = dist(t, 'arm64');
    for (const f of ['extcap/unixsock', 'build/unixsock.node']) assert.equal(elfMachine(path.join(u, f)), MACHINE.arm64, f);
    for (const f of ['scripts/install-extcap.sh', 'wireshark/unixsock.lua', 'wireshark/profile/preferences']) assert.ok(fs.existsSync(path.join(u, f)), f);
    const out = execFileSync('qemu-aarch64', ['-L', '/usr/aarch64-linux-gnu', path.join(u, 'extcap', 'unixsock'), '--extcap-interfaces'], { encoding: 'utf8' });
    assert.match(out, /^interface \{value=unixsock\}\{display=Unix sockets\}$/m);
  });
});
