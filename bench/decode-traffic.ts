// The decode benchmark's traffic: HTTP keep-alive requests and responses on
// 100 connections, as unixsock records and as Ethernet/IPv4/TCP packets
// carrying the same bytes (bench/run.ts decode, bench/decode-callgrind.ts).
import { encodeLinkHeader } from '../test/helpers/link-encode';
import type { UnixMessage } from '../src/records';

const base: Omit<UnixMessage, 'payload' | 'msgLen' | 'pid' | 'ino' | 'peerIno' | 'localPath' | 'peerPath'> = {
  ts: 0n,
  tid: 1,
  uid: 0,
  gid: 0,
  peerPid: 0,
  comm: 'client',
  peerComm: 'server',
  sockType: 1,
  strategy: 3,
  syscall: 1,
  flags: 0,
  pathIno: 0n,
  pathDev: 0,
  peerPathIsDest: false,
  cgroupId: 0n,
  peerCgroupId: 0n,
  pidns: 0,
  nspid: 0,
  mntns: 0,
  peerPidns: 0,
  peerNspid: 0,
  peerMntns: 0,
};

/** `pairs` request/response pairs: the unixsock records (LINKTYPE_USER0) and the TCP packets (LINKTYPE_ETHERNET). */
export function decodeTraffic(pairs: number): { unix: Buffer[]; tcp: Buffer[] } {
  const req = (i: number) => Buffer.from(`GET /item/${i} HTTP/1.1\r\nHost: unixsock\r\n\r\n`);
  const resp = (i: number) => {
    const body = `item ${i}\n`;
    return Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  };
  const unix: Buffer[] = [];
  const tcp: Buffer[] = [];
  const conns = 100;
  // running sequence numbers per connection and direction, as a real capture has them
  const seqs = Array.from({ length: conns }, () => [1, 1]);
  for (let i = 0; i < pairs; i++) {
    const c = i % conns;
    const seq = seqs[c];
    for (const [dir, payload] of [
      [0, req(i)],
      [1, resp(i)],
    ] as const) {
      const m: UnixMessage = {
        ...base,
        pid: dir ? 2 : 1,
        ino: BigInt(dir ? 20000 + c : 10000 + c),
        peerIno: BigInt(dir ? 10000 + c : 20000 + c),
        localPath: dir ? Buffer.from('/run/api.sock') : Buffer.alloc(0),
        peerPath: dir ? Buffer.alloc(0) : Buffer.from('/run/api.sock'),
        msgLen: payload.length,
        payload,
      };
      unix.push(Buffer.concat([encodeLinkHeader(m, 0, false), payload]));
      // Ethernet + IPv4 + TCP carrying the same bytes
      const eth = Buffer.alloc(14 + 20 + 20);
      eth.writeUInt16BE(0x0800, 12);
      eth[14] = 0x45;
      eth.writeUInt16BE(20 + 20 + payload.length, 16);
      eth[22] = 64;
      eth[23] = 6;
      eth.writeUInt32BE(dir ? 0x7f000002 : 0x7f000001, 26);
      eth.writeUInt32BE(dir ? 0x7f000001 : 0x7f000002, 30);
      const cport = 40000 + c;
      eth.writeUInt16BE(dir ? 80 : cport, 34);
      eth.writeUInt16BE(dir ? cport : 80, 36);
      eth.writeUInt32BE(seq[dir] >>> 0, 38);
      eth.writeUInt32BE(seq[1 - dir] >>> 0, 42);
      eth[46] = 0x50;
      eth[47] = 0x18;
      eth.writeUInt16BE(65535, 48);
      seq[dir] += payload.length;
      tcp.push(Buffer.concat([eth, payload]));
    }
  }
  return { unix, tcp };
}
