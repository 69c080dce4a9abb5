// Hand-built messages for unit and dissector tests (in addition to real captures).
import { FLAG } from '../../src/records';
import type { KernelMessage } from './kernel-records';

export function message(over: Partial<KernelMessage> = {}): KernelMessage {
  return {
    ts: 123456789n,
    pid: 4242,
    tid: 4243,
    uid: 1000,
    gid: 1001,
    peerPid: 811,
    comm: 'curl',
    peerComm: 'dockerd',
    sockType: 1,
    strategy: 3,
    syscall: 1,
    flags: 0,
    msgLen: 18,
    ino: 1111n,
    peerIno: 2222n,
    pathIno: 3333n,
    pathDev: (8 << 20) | 1,
    localPath: Buffer.alloc(0),
    peerPath: Buffer.from('/run/docker.sock\0'),
    peerPathIsDest: false,
    payload: Buffer.from('GET / HTTP/1.1\r\n\r\n'),
    cgroupId: 0x1234n,
    peerCgroupId: 0x1235n,
    pidns: 4026531836,
    nspid: 7,
    mntns: 4026531841,
    peerPidns: 4026531836,
    peerNspid: 811,
    peerMntns: 4026531841,
    ...over,
  };
}

/** A raw cmsg buffer: SCM_RIGHTS with fds, then SCM_CREDENTIALS. */
export function control(fds: number[], creds?: { pid: number; uid: number; gid: number }): Buffer {
  const parts: Buffer[] = [];
  const hdr = (len: number, type: number) => {
    const h = Buffer.alloc(16);
    h.writeBigUInt64LE(BigInt(len), 0);
    h.writeInt32LE(1, 8);
    h.writeInt32LE(type, 12);
    return h;
  };
  if (fds.length) {
    const d = Buffer.alloc(fds.length * 4);
    fds.forEach((fd, i) => d.writeInt32LE(fd, i * 4));
    const len = 16 + d.length;
    parts.push(hdr(len, 1), d, Buffer.alloc(((len + 7) & ~7) - len));
  }
  if (creds) {
    const d = Buffer.alloc(12);
    d.writeInt32LE(creds.pid, 0);
    d.writeUInt32LE(creds.uid, 4);
    d.writeUInt32LE(creds.gid, 8);
    parts.push(hdr(28, 2), d, Buffer.alloc(4));
  }
  return Buffer.concat(parts);
}

export { FLAG };
