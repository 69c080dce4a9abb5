import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { UsageError } from '../../src/errors';
import { kernelDev, parseFilter, toKernelFilter, TYPE_BITS } from '../../src/filter';

describe('capture filter language', () => {
  it('parses terms joined by and, with not', () => {
    assert.deepEqual(parseFilter('path /run/docker.sock and not comm dockerd'), [
      { kind: 'path', neg: false, value: '/run/docker.sock' },
      { kind: 'comm', neg: true, value: 'dockerd' },
    ]);
    assert.deepEqual(parseFilter('  stream   and not not pid 7 '), [
      { kind: 'type', neg: false, value: 'stream' },
      { kind: 'pid', neg: false, value: '7' },
    ]);
    assert.deepEqual(parseFilter(''), []);
  });

  it('keeps quoted values whole, even keywords and spaces', () => {
    assert.deepEqual(parseFilter('path "/tmp/with space.sock" and comm "and"'), [
      { kind: 'path', neg: false, value: '/tmp/with space.sock' },
      { kind: 'comm', neg: false, value: 'and' },
    ]);
    assert.deepEqual(parseFilter('path "a\\"b"'), [{ kind: 'path', neg: false, value: 'a"b' }]);
  });

  it('rejects what it does not accept with one clear sentence', () => {
    const bad: [string, RegExp][] = [
      ['port 80', /unknown term "port"/],
      ['path', /"path" needs a value/],
      ['path /a path /b', /expected "and" before "path"/],
      ['path /a and', /"and" needs a term after it/],
      ['not', /"not" needs a term after it/],
      ['"x', /unterminated quote/],
    ];
    for (const [src, re] of bad)
      assert.throws(
        () => parseFilter(src),
        (e: Error) => e instanceof UsageError && re.test(e.message),
        src,
      );
  });
});

describe('kernel filter settings', () => {
  it('exact, prefix and abstract paths', () => {
    const exact = toKernelFilter(parseFilter('path /run/x.sock'));
    assert.equal(exact.pathMode, 1);
    assert.deepEqual(exact.path, Buffer.from('/run/x.sock'));
    const prefix = toKernelFilter(parseFilter('not path /run/*'));
    assert.equal(prefix.pathMode, 2);
    assert.equal(prefix.pathNeg, 1);
    assert.deepEqual(prefix.path, Buffer.from('/run/'));
    const abs = toKernelFilter(parseFilter('path @/tmp/.X11-unix/X0'));
    assert.deepEqual(abs.path, Buffer.concat([Buffer.from([0]), Buffer.from('/tmp/.X11-unix/X0')]));
  });

  it('socket types as a mask of 1 << SOCK_*', () => {
    assert.equal(TYPE_BITS.stream, 1 << 1);
    assert.equal(TYPE_BITS.dgram, 1 << 2);
    assert.equal(TYPE_BITS.seqpacket, 1 << 5);
    assert.equal(toKernelFilter(parseFilter('type stream,dgram')).typesMask, (1 << 1) | (1 << 2));
    assert.equal(toKernelFilter(parseFilter('not dgram')).typesMask, (1 << 1) | (1 << 5));
    assert.equal(toKernelFilter([]).typesMask, 0, 'all types: no mask');
    assert.throws(() => toKernelFilter(parseFilter('type raw')), /not one of stream, dgram, seqpacket/);
  });

  it('a kind given twice differently is an error, the same twice is fine', () => {
    assert.throws(() => toKernelFilter(parseFilter('pid 1 and pid 2')), /"pid" is given twice/);
    assert.equal(toKernelFilter(parseFilter('pid 1 and pid 1')).pid, 1);
  });

  it('validates pid and comm bounds', () => {
    assert.throws(() => toKernelFilter(parseFilter('pid 0')), /not a process id/);
    assert.throws(() => toKernelFilter(parseFilter('pid 99999999999')), /not a process id/);
    assert.throws(() => toKernelFilter(parseFilter('comm 1234567890123456')), /1 to 15 bytes/);
    assert.equal(toKernelFilter(parseFilter('comm 123456789012345')).comm, '123456789012345');
  });

  it('file filter: the socket inode and device, through a symlink', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unixsock-unit-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const sock = path.join(dir, 's.sock');
    const server = net.createServer().listen(sock);
    await new Promise((r) => server.once('listening', r));
    t.after(() => server.close());
    fs.symlinkSync(sock, path.join(dir, 'link'));
    const st = fs.statSync(sock);
    const f = toKernelFilter(parseFilter(`file ${path.join(dir, 'link')}`));
    assert.equal(f.fileIno, st.ino);
    assert.equal(f.fileDev, kernelDev(st.dev));
    fs.writeFileSync(path.join(dir, 'plain'), '');
    assert.throws(() => toKernelFilter(parseFilter(`file ${path.join(dir, 'plain')}`)), /is not a socket/);
  });

  it("pidns and netns: an inode number, readlink's form, or a namespace file, each checked for its kind", async (t) => {
    // the expectations come from this process's own namespaces, as /proc shows them
    const own = (type: string) => fs.readlinkSync(`/proc/self/ns/${type}`);
    const inum = (type: string) => Number(/\[(\d+)\]/.exec(own(type))![1]);
    assert.equal(toKernelFilter(parseFilter(`pidns ${inum('pid')}`)).pidns, inum('pid'));
    assert.equal(toKernelFilter(parseFilter(`pidns ${own('pid')}`)).pidns, inum('pid'));
    assert.equal(toKernelFilter(parseFilter(`pidns /proc/${process.pid}/ns/pid`)).pidns, inum('pid'));
    const net = toKernelFilter(parseFilter(`not netns /proc/self/ns/net`));
    assert.deepEqual([net.netns, net.netnsOn, net.netnsNeg, net.pidnsOn], [inum('net'), 1, 1, 0]);
    assert.equal(toKernelFilter(parseFilter(`netns "${own('net')}"`)).netns, inum('net'));
    const bad: [string, RegExp][] = [
      ['pidns 0', /"0" is not a namespace inode number/],
      ['pidns 4294967296', /is not a namespace inode number \(1 to 4294967295\)/],
      [`pidns ${own('net')}`, /is a net namespace, not a pid one/],
      [`netns /proc/self/ns/pid`, /"\/proc\/self\/ns\/pid" is a pid namespace, not a net one/],
      ['netns blue', /is not a namespace \(give its inode number, net:\[N\]/],
      ['netns /proc/self', /is not a namespace file/],
      ['pidns /etc/hostname', /is not a namespace file/],
      ['pidns /nonexistent/ns', /cannot open "\/nonexistent\/ns": ENOENT/],
      ['pidns 1 and pidns 2', /"pidns" is given twice/],
    ];
    for (const [src, re] of bad)
      assert.throws(
        () => toKernelFilter(parseFilter(src)),
        (e: Error) => e instanceof UsageError && re.test(e.message) && !e.message.includes('\n'),
        src,
      );
    // a fifo is never opened (it would block): stat says it is no namespace file
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unixsock-unit-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [path.join(dir, 'fifo')]);
    assert.throws(() => toKernelFilter(parseFilter(`netns ${path.join(dir, 'fifo')}`)), /is not a namespace file/);
    // Wireshark's check as the user types opens nothing
    assert.equal(toKernelFilter(parseFilter('netns /nonexistent/ns'), { syntaxOnly: true }).netnsOn, 1);
  });

  it('converts userspace dev_t to the kernel encoding', () => {
    // major 8, minor 1 (sda1): new_encode_dev = 0x801 -> MKDEV = 8 << 20 | 1
    assert.equal(kernelDev(0x801), (8 << 20) | 1);
    // minor above 255: (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)
    const major = 259;
    const minor = 0x1234;
    const user = (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12);
    assert.equal(kernelDev(user), ((major << 20) | minor) >>> 0);
  });
});
