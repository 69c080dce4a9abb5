// The capture filter language, and how filters become the kernel's settings.
//
//   filter := term { "and" term }
//   term   := [ "not" ] primitive
//   primitive := "path" PATH      exact path; PATH* is a prefix; @name is abstract
//              | "file" FILE      the socket file itself (its inode), through symlinks
//              | "pid" N          sender or peer process
//              | "comm" NAME      sender or peer command name (up to 15 bytes)
//              | "type" T[,T]     stream, dgram, seqpacket
//              | "container" C    sender or peer in container C (name, or id prefix)
//              | "cgroup" PATH    sender or peer in cgroup PATH (v2 path) or below it
//              | "pidns" NS       sender or peer process in pid namespace NS
//              | "netns" NS       sending socket or its peer in network namespace NS
//              | "stream" | "dgram" | "seqpacket"
// Values may be quoted with "..." (backslash escapes \" and \\).
// Each of path, file, pid and comm may appear once; container and cgroup
// once between them (they are one cgroup test in the kernel). A namespace NS
// is its inode number (4026531836), as readlink prints it (pid:[4026531836]),
// or a namespace file (/proc/PID/ns/pid, /run/netns/NAME), opened with the
// user's own rights (src/main.ts: no capability is in effect by then).
import * as fs from 'node:fs';
import { UsageError } from './errors';
import { PATH_MODE, SOCK_TYPE_NAMES, emptyUnixsockFilter, type UnixsockFilter } from './generated/vocab';
import * as path from 'node:path';
import { cgroupIdOf, cgroupLevel } from './cgroup';
import type { IdentityResolver } from './identity';
import { COMM_MAX_BYTES, CONTAINER_PATTERN, PATH_MAX_BYTES, PID_MAX } from './limits';

export type Kind = 'path' | 'file' | 'pid' | 'comm' | 'type' | 'container' | 'cgroup' | 'pidns' | 'netns';

export interface Term {
  kind: Kind;
  neg: boolean;
  value: string;
  /** container and cgroup terms: the cgroup they name (resolveCgroupTerms) */
  target?: CgroupTarget;
}

/** A cgroup v2 directory: the kernel's id for it and its depth below the root. */
export interface CgroupTarget {
  id: bigint;
  level: number;
  path: string;
}

/** A socket type's bit in UnixsockFilter.typesMask: 1 << its number. */
export const TYPE_BITS: Record<string, number> = Object.fromEntries(Object.entries(SOCK_TYPE_NAMES).map(([n, name]) => [name, 1 << Number(n)]));
const ALL_TYPES = TYPE_BITS.stream | TYPE_BITS.dgram | TYPE_BITS.seqpacket;

function tokenize(s: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '"') {
      let v = '';
      i++;
      for (;;) {
        if (i >= s.length) throw new UsageError('capture filter: unterminated quote');
        const d = s[i++];
        if (d === '"') break;
        if (d === '\\' && i < s.length) v += s[i++];
        else v += d;
      }
      out.push('\u0000' + v); // marks a quoted value: never a keyword
      continue;
    }
    let j = i;
    while (j < s.length && !/\s/.test(s[j])) j++;
    out.push(s.slice(i, j));
    i = j;
  }
  return out;
}

const unq = (t: string) => (t.startsWith('\u0000') ? t.slice(1) : t);

export function parseFilter(src: string): Term[] {
  const toks = tokenize(src);
  const terms: Term[] = [];
  let i = 0;
  const expectValue = (kw: string) => {
    if (i >= toks.length) throw new UsageError(`capture filter: "${kw}" needs a value`);
    return unq(toks[i++]);
  };
  while (i < toks.length) {
    if (terms.length) {
      if (toks[i] !== 'and') {
        throw new UsageError(`capture filter: expected "and" before "${unq(toks[i])}" (only "and" and "not" combine terms)`);
      }
      i++;
      if (i >= toks.length) throw new UsageError('capture filter: "and" needs a term after it');
    }
    let neg = false;
    while (toks[i] === 'not') {
      neg = !neg;
      i++;
    }
    const kw = toks[i++];
    if (kw === undefined) throw new UsageError('capture filter: "not" needs a term after it');
    switch (kw) {
      case 'path':
      case 'file':
      case 'pid':
      case 'comm':
      case 'type':
      case 'container':
      case 'cgroup':
      case 'pidns':
      case 'netns':
        terms.push({ kind: kw, neg, value: expectValue(kw) });
        break;
      case 'stream':
      case 'dgram':
      case 'seqpacket':
        terms.push({ kind: 'type', neg, value: kw });
        break;
      default:
        throw new UsageError(
          `capture filter: unknown term "${unq(kw)}" (use path, file, pid, comm, type, stream, dgram, seqpacket, container, cgroup, pidns, netns, and, not)`,
        );
    }
  }
  return terms;
}

/**
 * What the kernel probes are told: struct unixsock_filter of bpf/unixsock.h,
 * which the addon copies field by field into the probes' read-only data.
 * toKernelFilter fills the filter fields; the capture adds its settings.
 */
export type KernelFilter = UnixsockFilter;

/** Linux's userspace dev_t encoding (stat) to the kernel's (MAJOR << 20 | MINOR). */
export function kernelDev(dev: number): number {
  const major = Math.floor(dev / 256) & 0xfff;
  const minor = (dev & 0xff) | (Math.floor(dev / 4096) & 0xfff00);
  return ((major << 20) | minor) >>> 0;
}

function pathBytes(v: string): { mode: number; bytes: Buffer } {
  let mode: number = PATH_MODE.EXACT;
  if (v.endsWith('*')) {
    mode = PATH_MODE.PREFIX;
    v = v.slice(0, -1);
  }
  const bytes = v.startsWith('@') ? Buffer.concat([Buffer.from([0]), Buffer.from(v.slice(1), 'utf8')]) : Buffer.from(v, 'utf8');
  if (bytes.length === 0) throw new UsageError('path filter: empty path');
  if (bytes.length > PATH_MAX_BYTES) throw new UsageError(`path filter: "${v}" is longer than a socket path can be (${PATH_MAX_BYTES} bytes)`);
  if (!v.startsWith('@') && bytes.includes(0)) throw new UsageError('path filter: a path cannot contain a NUL byte');
  return { mode, bytes };
}

/** The kernel's name for a namespace type, as readlink of /proc/PID/ns/* prints it. */
const NS_TYPE = { pidns: 'pid', netns: 'net' } as const;
/** Namespace inode numbers are unsigned int in the kernel (ns_common.inum). */
const NS_INUM_MAX = 0xffffffff;

function nsNumber(kind: 'pidns' | 'netns', digits: string, value: string): number {
  const n = Number(digits);
  if (!/^[1-9]/.test(digits) || n > NS_INUM_MAX) throw new UsageError(`${kind} filter: "${value}" is not a namespace inode number (1 to ${NS_INUM_MAX})`);
  return n;
}

/** "pid:[4026531836]": how readlink names a namespace, typed by the user or read back from /proc/self/fd. */
const NS_LINK = /^([a-z_]{1,20}):\[([0-9]{1,10})\]$/;

/** The inode number of a NS_LINK match, if its kind is the term's. */
function nsOfLink(kind: 'pidns' | 'netns', m: RegExpExecArray, value: string): number {
  if (m[1] !== NS_TYPE[kind]) throw new UsageError(`${kind} filter: "${value}" is a ${m[1]} namespace, not a ${NS_TYPE[kind]} one`);
  return nsNumber(kind, m[2], value);
}

/**
 * The inode number of the namespace a pidns or netns term names: a number, the
 * form readlink prints (pid:[4026531836]), or a namespace file. A file is
 * opened (non-blocking, only if stat calls it a regular file, as nsfs files
 * are: no fifo, device or directory is opened) and its kind read back from
 * /proc/self/fd, which names an nsfs file "pid:[N]". The open is the
 * kernel's own access check: another process's /proc/PID/ns/* opens only for
 * whoever may ptrace-read it, and this runs with the user's rights (the
 * addon cleared the effective capabilities before any filter is read), so
 * the filter learns nothing its user could not. syntaxOnly: a file is not
 * opened (Wireshark checks the filter as the user types).
 */
export function nsInode(kind: 'pidns' | 'netns', value: string, syntaxOnly = false): number {
  const type = NS_TYPE[kind];
  if (/^[0-9]{1,10}$/.test(value)) return nsNumber(kind, value, value);
  const m = NS_LINK.exec(value);
  if (m) return nsOfLink(kind, m, value);
  if (!value.startsWith('/') || value.includes('\0') || Buffer.byteLength(value) > 4096) {
    throw new UsageError(
      `${kind} filter: "${value}" is not a namespace (give its inode number, ${type}:[N] as readlink prints it, or a file like /proc/PID/ns/${type})`,
    );
  }
  if (syntaxOnly) return 1;
  let fd: number | undefined;
  try {
    if (!fs.statSync(value).isFile()) throw new UsageError(`${kind} filter: "${value}" is not a namespace file (like /proc/PID/ns/${type})`);
    fd = fs.openSync(value, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
    const name = fs.readlinkSync(`/proc/self/fd/${fd}`);
    const k = NS_LINK.exec(name);
    if (!k) throw new UsageError(`${kind} filter: "${value}" is not a namespace file (like /proc/PID/ns/${type})`);
    return nsOfLink(kind, k, value);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    const why = code === 'EACCES' || code === 'EPERM' ? " (another user's /proc/PID/ns opens only for root)" : '';
    throw new UsageError(`${kind} filter: cannot open "${value}": ${code}${why}`);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** syntaxOnly: container and cgroup terms need not be resolved (Wireshark's filter check as the user types). */
export function toKernelFilter(terms: Term[], opts: { syntaxOnly?: boolean } = {}): KernelFilter {
  const f = emptyUnixsockFilter();
  const seen = new Map<Kind, Term>();
  let types = ALL_TYPES;
  for (const t of terms) {
    if (t.kind !== 'type') {
      const prev = seen.get(t.kind === 'container' ? 'cgroup' : t.kind);
      if (prev) {
        if (prev.value === t.value && prev.neg === t.neg) continue;
        if (prev.kind !== t.kind) throw new UsageError(`filter: "container" and "cgroup" cannot both be given ("${prev.value}" and "${t.value}"); give one`);
        throw new UsageError(`filter: "${t.kind}" is given twice ("${prev.value}" and "${t.value}"); give it once`);
      }
      seen.set(t.kind === 'container' ? 'cgroup' : t.kind, t);
    }
    const neg = t.neg ? 1 : 0;
    switch (t.kind) {
      case 'path': {
        const p = pathBytes(t.value);
        f.pathMode = p.mode;
        f.path = p.bytes;
        f.pathLen = p.bytes.length;
        f.pathNeg = neg;
        break;
      }
      case 'file': {
        let st: fs.Stats;
        try {
          st = fs.statSync(t.value);
        } catch (e) {
          throw new UsageError(`file filter: cannot stat "${t.value}": ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
        }
        if (!st.isSocket()) throw new UsageError(`file filter: "${t.value}" is not a socket`);
        f.fileOn = 1;
        f.fileNeg = neg;
        f.fileDev = kernelDev(st.dev);
        f.fileIno = st.ino;
        break;
      }
      case 'pid': {
        if (!/^[0-9]{1,10}$/.test(t.value) || Number(t.value) < 1 || Number(t.value) > PID_MAX) {
          throw new UsageError(`pid filter: "${t.value}" is not a process id`);
        }
        f.pidOn = 1;
        f.pidNeg = neg;
        f.pid = Number(t.value);
        break;
      }
      case 'comm': {
        if (Buffer.byteLength(t.value) === 0 || Buffer.byteLength(t.value) > COMM_MAX_BYTES) {
          throw new UsageError(`comm filter: "${t.value}" must be 1 to ${COMM_MAX_BYTES} bytes (the kernel keeps ${COMM_MAX_BYTES})`);
        }
        f.commOn = 1;
        f.commNeg = neg;
        f.comm = t.value;
        break;
      }
      case 'container':
      case 'cgroup': {
        if (!t.target) {
          if (opts.syntaxOnly) break;
          throw new UsageError(`${t.kind} filter: "${t.value}" was not resolved to a cgroup`);
        }
        f.cgroupOn = 1;
        f.cgroupNeg = neg;
        f.cgroupLevel = t.target.level;
        f.cgroupId = Number(t.target.id);
        break;
      }
      case 'pidns':
      case 'netns': {
        const ino = nsInode(t.kind, t.value, opts.syntaxOnly);
        if (t.kind === 'pidns') {
          f.pidnsOn = 1;
          f.pidnsNeg = neg;
          f.pidns = ino;
        } else {
          f.netnsOn = 1;
          f.netnsNeg = neg;
          f.netns = ino;
        }
        break;
      }
      case 'type': {
        let mask = 0;
        for (const name of t.value.split(',')) {
          const bit = TYPE_BITS[name.trim()];
          if (!bit) throw new UsageError(`type filter: "${name}" is not one of stream, dgram, seqpacket`);
          mask |= bit;
        }
        types &= t.neg ? ~mask : mask;
        break;
      }
    }
  }
  if (types === 0) throw new UsageError('type filter: no socket type is left to capture');
  f.typesMask = types === ALL_TYPES ? 0 : types;
  return f;
}

/**
 * Finds the cgroup of each container and cgroup term (before the probes
 * load: the kernel compares cgroup ids). A container is named by its name (as
 * its runtime's API socket gives it) or a prefix of its id; it must be
 * running (its cgroup exists only then). A cgroup is a path in the v2
 * hierarchy as /proc/PID/cgroup prints it ("/docker", "/system.slice").
 */
export async function resolveCgroupTerms(terms: Term[], resolver: () => IdentityResolver): Promise<Term[]> {
  for (const t of terms) {
    if (t.kind !== 'container' && t.kind !== 'cgroup') continue;
    const r = resolver();
    if (!r.root) throw new UsageError(`${t.kind} filter: no cgroup v2 hierarchy is mounted (the kernel's cgroup ids live there)`);
    let cgPath: string;
    if (t.kind === 'cgroup') {
      if (!t.value.startsWith('/') || t.value.split('/').includes('..') || Buffer.byteLength(t.value) > 4096) {
        throw new UsageError(`cgroup filter: "${t.value}" is not a cgroup path (like /docker or /system.slice/docker.service)`);
      }
      cgPath = t.value;
    } else {
      if (!new RegExp(CONTAINER_PATTERN).test(t.value)) throw new UsageError(`container filter: "${t.value}" is not a container name or id`);
      const found = await r.findContainer(t.value);
      if (found.cgroups.length === 0) {
        throw new UsageError(
          `container filter: no running container is named "${t.value}" or has an id starting with it (cgroups under ${r.root}, names from ${r.names.sockets.join(', ')}${r.names.lastError ? `: ${r.names.lastError}` : ''})`,
        );
      }
      if (found.cgroups.length > 1) throw new UsageError(`container filter: "${t.value}" matches ${found.cgroups.length} containers; give more of the id`);
      cgPath = found.cgroups[0];
    }
    const id = cgroupIdOf(path.join(r.root, cgPath));
    if (id === undefined) throw new UsageError(`${t.kind} filter: no cgroup ${cgPath} in ${r.root}`);
    t.target = { id, level: cgroupLevel(cgPath), path: cgPath };
  }
  return terms;
}
