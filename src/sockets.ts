// The socket picker of the extcap dialog: the Unix sockets that are waiting
// for someone to talk to them right now (listening stream and seqpacket
// sockets, bound datagram sockets), from /proc/net/unix, each with the
// process that holds it (matched by inode in /proc/PID/fd) and its container.
//
// Bounded on every side: Wireshark runs this when the dialog opens and on its
// reload button, so a machine with thousands of processes or sockets must not
// make the dialog wait. What the caller cannot read (another user's
// /proc/PID/fd without privileges) is simply not shown.
import * as fs from 'node:fs';
import { containerOfCgroup, unifiedPathOf } from './cgroup';
import type { ContainerNames } from './docker';

export interface Listener {
  /** "/run/docker.sock", or "@name" for an abstract one */
  path: string;
  type: 'stream' | 'dgram' | 'seqpacket';
  inode: number;
  pid?: number;
  comm?: string;
  /** the container's name, else its short id */
  container?: string;
}

const SO_ACCEPTCON = 0x10000;
const SS_UNCONNECTED = 1;
const TYPES: Record<number, Listener['type']> = { 1: 'stream', 2: 'dgram', 5: 'seqpacket' };
/** At most this many sockets are listed (sorted by path). */
export const MAX_LISTED = 300;
/** /proc/PID/fd walks stop after this long; the sockets found so far keep their owners. */
const OWNER_BUDGET_MS = 400;

/** /proc/net/unix's text → the sockets someone can connect or send to. */
export function parseProcNetUnix(text: string): Listener[] {
  const out: Listener[] = [];
  for (const line of text.split('\n').slice(1)) {
    // Num RefCount Protocol Flags Type St Inode [Path]; a path may contain spaces
    const m = /^\s*[0-9a-f]+: [0-9A-F]+ [0-9A-F]+ ([0-9A-F]+) ([0-9A-F]+) ([0-9A-F]+)\s+(\d+)(?: (.*))?$/.exec(line);
    if (!m || m[5] === undefined) continue;
    const flags = parseInt(m[1], 16);
    const type = TYPES[parseInt(m[2], 16)];
    const state = parseInt(m[3], 16);
    const p = m[5];
    // a brace would end the extcap line's {value=...} early (the protocol has no escape): such a path is typed, not picked
    if (!type || !p || /[{}]/.test(p)) continue;
    const listening = type === 'dgram' ? state === SS_UNCONNECTED : (flags & SO_ACCEPTCON) !== 0;
    if (!listening) continue;
    out.push({ path: p, type, inode: Number(m[4]) });
  }
  // one line per socket; the same path can be bound twice (a stale file and a new one): keep both
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : a.inode - b.inode));
  return out.slice(0, MAX_LISTED);
}

/** Fills pid and comm from /proc/PID/fd (socket:[INODE] links), within a time budget. */
export function findOwners(list: Listener[], proc = '/proc', budgetMs = OWNER_BUDGET_MS): void {
  const byInode = new Map(list.map((l) => [l.inode, l]));
  let left = byInode.size;
  const end = Date.now() + budgetMs;
  let pids: string[];
  try {
    pids = fs.readdirSync(proc).filter((d) => /^\d+$/.test(d));
  } catch {
    return;
  }
  for (const pid of pids) {
    if (left === 0 || Date.now() > end) break;
    let fds: string[];
    try {
      fds = fs.readdirSync(`${proc}/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = fs.readlinkSync(`${proc}/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      const l = m && byInode.get(Number(m[1]));
      if (!l || l.pid !== undefined) continue;
      l.pid = Number(pid);
      try {
        l.comm = fs.readFileSync(`${proc}/${pid}/comm`, 'utf8').trim();
      } catch {
        // gone meanwhile
      }
      left--;
    }
  }
}

/** The container of each owner, from /proc/PID/cgroup and the runtime's names (when asked). */
export function findContainers(list: Listener[], names?: ContainerNames, proc = '/proc'): void {
  for (const l of list) {
    if (l.pid === undefined) continue;
    let text: string;
    try {
      text = fs.readFileSync(`${proc}/${l.pid}/cgroup`, 'utf8');
    } catch {
      continue;
    }
    // the v2 line; a v1-only machine has none, its first line names the same path for Docker
    const p = unifiedPathOf(text) ?? text.split('\n')[0]?.split(':')[2];
    const c = p ? containerOfCgroup(p) : undefined;
    if (c) l.container = names?.name(c.id) ?? (/^[0-9a-f]{64}$/.test(c.id) ? c.id.slice(0, 12) : c.id);
  }
}

/** "/run/docker.sock (dockerd 811)", "/srv/app.sock (node 4242 [web-1])", "@bus (dgram)". */
export function listenerLabel(l: Listener): string {
  const who = l.pid !== undefined ? `${l.comm ?? '?'} ${l.pid}${l.container ? ` [${l.container}]` : ''}` : '';
  const kind = l.type === 'stream' ? '' : l.type;
  const inner = [who, kind].filter(Boolean).join(', ');
  return inner ? `${l.path} (${inner})` : l.path;
}

/** The listening sockets of this machine as the dialog lists them. */
export async function listeners(names?: ContainerNames): Promise<Listener[]> {
  let text: string;
  try {
    text = fs.readFileSync('/proc/net/unix', 'utf8');
  } catch {
    return [];
  }
  const list = parseProcNetUnix(text);
  findOwners(list);
  if (names && list.some((l) => l.pid !== undefined)) await names.refresh();
  findContainers(list, names);
  return list;
}
