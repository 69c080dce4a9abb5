// The readable dump's messages: the addon's writer (native/pcapng_out.h) turns
// the kernel's records into pcapng enhanced packet blocks, in memory for the
// dump (native/capture.h); this reads them back, one message per send (a send
// longer than one record continues, flag MORE, in the blocks right after it).
// The writer is the one place that joins kernel records and parses ancillary
// data; test/helpers/kernel-records.ts keeps the TypeScript copy the tests
// check it against.

import { EPB_HEAD, LINK_FLAGS, MSG_FLAGS, SOCK_TYPE, SOCK_TYPE_NAMES } from './generated/vocab';
import { decodeLinkHeader, type DecodedHeader } from './link-header';

export { STRATEGY_NAMES } from './generated/vocab';

/** unixsock_msg.flags, and LOST, which the writer adds (a header flag). */
export const FLAG = { ...MSG_FLAGS, LOST: LINK_FLAGS.LOST } as const;

export const SOCK_TYPES = SOCK_TYPE_NAMES;

export type { Credentials } from './link-header';

/** The fields a message keeps as its first record's header has them (src/link-header.ts says what each is). */
type HeaderFields = Omit<
  DecodedHeader,
  | 'version'
  | 'headerLen'
  | 'flags'
  | 'offset'
  | 'payload'
  | 'localPath'
  | 'peerPath'
  | 'destPath'
  | 'containerId'
  | 'containerName'
  | 'peerContainerId'
  | 'peerContainerName'
>;

export interface UnixMessage extends HeaderFields {
  /** CLOCK_MONOTONIC nanoseconds, as the kernel stamped it */
  ts: bigint;
  /** the first record's header flags, LOST if any record of the message was */
  flags: number;
  /** raw bound path of the sending socket (abstract names start with a NUL) */
  localPath: Buffer;
  /** raw bound path of the peer, or the destination address of sendto */
  peerPath: Buffer;
  peerPathIsDest: boolean;
  /** captured bytes (cap_len of them, fewer when LOST) */
  payload: Buffer;
  /** the containers their cgroups name, as the writer added them (src/identity.ts resolves them) */
  container?: ContainerLabel;
  peerContainer?: ContainerLabel;
}

export interface ContainerLabel {
  id: string;
  name?: string;
}

export interface AssemblerStats {
  messages: number;
  incomplete: number;
  orphanRecords: number;
  badRecords: number;
}

/** Where an enhanced packet block keeps what is read here (the pcapng specification; the packet data starts at EPB_HEAD). */
const EPB = { TYPE: 6, type: 0, totalLen: 4, tsHigh: 12, tsLow: 16, capLen: 20 } as const;

/** A message from its first record's header, the payload of all its records. */
function toMessage(h: DecodedHeader, ts: bigint, payload: Buffer, flags: number): UnixMessage {
  const {
    version: _v,
    headerLen: _l,
    flags: _f,
    offset: _o,
    payload: _p,
    localPath,
    peerPath,
    destPath,
    containerId,
    containerName,
    peerContainerId,
    peerContainerName,
    ...fields
  } = h;
  return {
    ...fields,
    ts,
    flags,
    localPath: localPath ?? Buffer.alloc(0),
    peerPath: destPath ?? peerPath ?? Buffer.alloc(0),
    peerPathIsDest: destPath !== undefined,
    payload,
    ...(containerId ? { container: { id: containerId, name: containerName } } : {}),
    ...(peerContainerId ? { peerContainer: { id: peerContainerId, name: peerContainerName } } : {}),
  };
}

/**
 * Reads the addon's batches for the readable dump: whole enhanced packet
 * blocks (timestamps CLOCK_MONOTONIC), one record each, the records of a
 * send in a row.
 */
export class MessageReader {
  /** blocks that are not what the writer writes */
  badBlocks = 0;
  messages = 0;
  private first?: { h: DecodedHeader; ts: bigint };
  private parts: Buffer[] = [];

  constructor(private readonly emit: (m: UnixMessage) => void) {}

  push(batch: Buffer): void {
    let o = 0;
    while (o + 12 <= batch.length) {
      const type = batch.readUInt32LE(o + EPB.type);
      const len = batch.readUInt32LE(o + EPB.totalLen);
      if (len < 12 || len % 4 || o + len > batch.length) {
        this.badBlocks++;
        return;
      }
      if (type === EPB.TYPE && len >= EPB_HEAD) {
        const ts = (BigInt(batch.readUInt32LE(o + EPB.tsHigh)) << 32n) | BigInt(batch.readUInt32LE(o + EPB.tsLow));
        const cap = batch.readUInt32LE(o + EPB.capLen);
        if (EPB_HEAD + cap > len) this.badBlocks++;
        else this.record(batch.subarray(o + EPB_HEAD, o + EPB_HEAD + cap), ts);
      }
      o += len;
    }
  }

  private record(data: Buffer, ts: bigint): void {
    let h: DecodedHeader;
    try {
      h = decodeLinkHeader(data);
    } catch {
      this.badBlocks++;
      return;
    }
    // an identity record names a container for a pcapng reader; the dump's lines are written already
    if (h.sockType === 0) return;
    if (this.first && h.tid !== this.first.h.tid) this.end(); // cannot happen: a send's records are in a row
    if (!this.first) this.first = { h, ts };
    this.parts.push(h.payload);
    if (!(h.flags & LINK_FLAGS.MORE)) this.end();
  }

  private end(): void {
    if (!this.first) return;
    const { h, ts } = this.first;
    const payload = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
    this.first = undefined;
    this.parts = [];
    this.messages++;
    this.emit(toMessage(h, ts, payload, h.flags & ~(LINK_FLAGS.MORE | LINK_FLAGS.CTRL_MALFORMED)));
  }
}

/** A path as people write it: abstract names as @name, non-printables escaped. */
export function formatPath(raw: Buffer): string {
  if (raw.length === 0) return '';
  let b = raw;
  let prefix = '';
  if (b[0] === 0) {
    prefix = '@';
    b = b.subarray(1);
  } else {
    const nul = b.indexOf(0);
    if (nul >= 0) b = b.subarray(0, nul);
  }
  let s = prefix;
  for (const c of b) {
    if (c >= 0x20 && c < 0x7f && c !== 0x5c) s += String.fromCharCode(c);
    else if (c === 0x5c) s += '\\\\';
    else s += '\\x' + c.toString(16).padStart(2, '0');
  }
  return s;
}

/** The path a person would name the conversation by: the server's bound path. */
export function conversationPath(m: Pick<UnixMessage, 'sockType' | 'localPath' | 'peerPath'>): Buffer {
  if (m.sockType === SOCK_TYPE.DGRAM) return m.peerPath.length ? m.peerPath : m.localPath;
  return m.localPath.length ? m.localPath : m.peerPath;
}
