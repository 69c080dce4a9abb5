// What an executable with capabilities (a member's capture, see
// docs/threat-model.md) loads and opens: the addon only from a root-owned file
// beside the executable, the administrator's policy only from there, and the
// user's output paths with the user's own rights (the addon has cleared the
// effective capabilities before any of them is opened).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CaptureError, UsageError } from './errors';

const AT_SECURE = 23n;

/** The kernel's secure-execution flag (set when exec gave this process capabilities or another uid). */
function atSecure(): boolean {
  try {
    const b = fs.readFileSync('/proc/self/auxv');
    for (let o = 0; o + 16 <= b.length; o += 16) {
      const type = b.readBigUInt64LE(o);
      if (type === 0n) break;
      if (type === AT_SECURE) return b.readBigUInt64LE(o + 8) !== 0n;
    }
  } catch {
    return true; // cannot tell: assume the worst
  }
  return false;
}

/** The capabilities (effective and permitted) as this module was first loaded, before the addon cleared them. */
const startCaps = heldCaps();
export function capsAtStart(): bigint {
  return startCaps;
}

function heldCaps(): bigint {
  try {
    const st = fs.readFileSync('/proc/self/status', 'utf8');
    let held = 0n;
    for (const k of ['CapEff', 'CapPrm', 'CapAmb']) {
      const v = new RegExp(`^${k}:\\s*([0-9a-f]+)$`, 'm').exec(st)?.[1];
      if (v) held |= BigInt(`0x${v}`);
    }
    return held;
  } catch {
    return 1n;
  }
}

/**
 * True when this process has privileges its user does not: secure execution
 * (file capabilities, set-uid), or capabilities held by a non-root uid
 * (ambient ones, for instance). Then nothing the user controls is loaded.
 */
export function privileged(): boolean {
  if (atSecure()) return true;
  return process.getuid?.() !== 0 && heldCaps() !== 0n;
}

/** The folder of the executable itself (never argv[0] or the environment). */
export function exeDir(): string {
  return path.dirname(fs.realpathSync('/proc/self/exe'));
}

/** Refuses a file or folder a user other than root could change (sshd's StrictModes). */
function rootOnly(st: fs.Stats, what: string): void {
  if (st.uid !== 0 || (st.mode & 0o022) !== 0) {
    throw new CaptureError(
      `${what} must belong to root and be writable by root only (an executable with capabilities loads nothing a user could change): run scripts/install-extcap.sh --system again`,
    );
  }
}

/** Every folder from dir up to / belongs to root and is writable by root only. */
function checkFolders(dir: string): void {
  for (let d = dir; ; d = path.dirname(d)) {
    rootOnly(fs.statSync(d), `the folder ${d}`);
    if (d === '/') break;
  }
}

/**
 * Opens the addon installed beside the executable (install-extcap.sh --system)
 * and returns a path to the open file (/proc/self/fd/N) for dlopen, once it is
 * known to be root's, unwritable by others and byte for byte the addon this
 * executable embeds. close() after loading.
 */
export function installedAddon(embedded: ArrayBuffer): { file: string; close: () => void } {
  const dir = exeDir();
  const file = path.join(dir, 'unixsock.node');
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw new CaptureError(
      `${file} cannot be opened (${(e as NodeJS.ErrnoException).code}): this executable has capabilities and loads its engine only from there; run scripts/install-extcap.sh --system again`,
    );
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new CaptureError(`${file} is not a file: run scripts/install-extcap.sh --system again`);
    rootOnly(st, file);
    checkFolders(dir);
    // required here, not at the top: loading node:crypto costs ~4 ms of every
    // start, also of Wireshark's extcap queries, which never get here
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- lazy, as said above
    const crypto = require('node:crypto') as typeof import('node:crypto');
    const want = crypto.createHash('sha256').update(Buffer.from(embedded)).digest('hex');
    const got = crypto.createHash('sha256').update(fs.readFileSync(fd)).digest('hex');
    if (want !== got) {
      throw new CaptureError(`${file} is not the engine this executable was built with: run scripts/install-extcap.sh --system again`);
    }
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  return { file: `/proc/self/fd/${fd}`, close: () => fs.closeSync(fd) };
}

/** The administrator's policy file, beside the executable (install-extcap.sh --system --own-uid-only). */
export function policyFile(): string {
  return path.join(exeDir(), 'unixsock.policy');
}

/**
 * The uid whose traffic alone this capture may see, or undefined for
 * everything: root is never restricted; a privileged non-root run is when the
 * root-owned policy file says `members = own-uid`.
 */
export function restrictedUid(): number | undefined {
  const uid = process.getuid?.() ?? 0;
  if (uid === 0 || !privileged()) return undefined;
  const file = policyFile();
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // the default: everything
    throw new CaptureError(`policy ${file} cannot be read (${(e as NodeJS.ErrnoException).code}): ask the administrator`);
  }
  let text: string;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size > 4096) throw new CaptureError(`policy ${file} is not a small file: ask the administrator`);
    rootOnly(st, `policy ${file}`);
    checkFolders(path.dirname(file));
    text = fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
  let members: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const m = /^members\s*=\s*(\S+)$/.exec(line);
    if (!m || (m[1] !== 'own-uid' && m[1] !== 'everything')) {
      throw new CaptureError(`policy ${file}: "${line}" is not "members = own-uid" or "members = everything": ask the administrator`);
    }
    members = m[1];
  }
  return members === 'own-uid' ? uid : undefined;
}

// Filesystems whose files act on the kernel or on processes: never a capture's output.
const KERNEL_FS: Record<number, string> = {
  0x9fa0: 'procfs',
  0x62656572: 'sysfs',
  0x64626720: 'debugfs',
  0x74726163: 'tracefs',
  0xcafe4a11: 'bpffs',
  0x73636673: 'securityfs',
  0x27e0eb: 'cgroupfs',
  0x63677270: 'cgroup2fs',
  0xde5e81e4: 'efivarfs',
  0x62656570: 'configfs',
};

function checkOpened(fd: number, shown: string, kinds: 'output' | 'fifo'): void {
  const st = fs.fstatSync(fd);
  if (kinds === 'fifo' ? !st.isFIFO() : !(st.isFile() || st.isFIFO() || st.isCharacterDevice())) {
    throw new UsageError(`${shown}: ${kinds === 'fifo' ? 'not a fifo' : 'not a file, fifo or terminal'}`);
  }
  const fsType = KERNEL_FS[Number(fs.statfsSync(`/proc/self/fd/${fd}`).type)];
  if (fsType) throw new UsageError(`${shown}: a kernel interface (${fsType}), not a place for a capture`);
}

/**
 * Opens an output path (-w, --log-file) with the invoking user's rights only
 * (the addon cleared the effective capabilities when it was loaded): a new
 * file is created without following a symbolic link; an existing one is
 * opened as it is (a fifo, /dev/null, a file, also through a link); a link to
 * nothing, a folder, or a file of /proc, /sys and the like is refused.
 */
export function openUserOutput(target: string, append: boolean, shown: string): number {
  const c = fs.constants;
  const flags = c.O_WRONLY | (append ? c.O_APPEND : 0);
  let fd: number;
  try {
    fd = fs.openSync(target, flags | c.O_CREAT | c.O_EXCL | c.O_NOFOLLOW, append ? 0o600 : 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new UsageError(`${shown}: ${(e as NodeJS.ErrnoException).code}`);
    try {
      fd = fs.openSync(target, flags);
    } catch (e2) {
      const code = (e2 as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new UsageError(`${shown}: a symbolic link to nothing`);
      throw new UsageError(`${shown}: ${code}`);
    }
    try {
      checkOpened(fd, shown, 'output');
      if (!append && fs.fstatSync(fd).isFile()) fs.ftruncateSync(fd, 0);
    } catch (e3) {
      fs.closeSync(fd);
      throw e3;
    }
  }
  return fd;
}

/**
 * Opens Wireshark's fifo (--fifo) with the invoking user's rights. A path
 * that does not exist is created as a plain file, as Wireshark's own extcaps
 * do (handy for scripts and tests): O_CREAT|O_EXCL|O_NOFOLLOW, so nothing is
 * followed, truncated or overwritten. An existing one must be a fifo, not
 * reached through a symbolic link. It is opened without blocking, tried every
 * 10 ms until its reader (dumpcap) has it open, so that a stop meanwhile ends
 * the wait: undefined when stopped() said so first.
 */
export async function openFifo(target: string, shown: string, stopped: () => boolean = () => false): Promise<number | undefined> {
  const c = fs.constants;
  for (;;) {
    if (stopped()) return undefined;
    let probe: number;
    try {
      probe = fs.openSync(target, c.O_WRONLY | c.O_NONBLOCK | c.O_NOFOLLOW);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
      if (code === 'ENXIO' && fs.lstatSync(target, { throwIfNoEntry: false })?.isFIFO()) {
        await new Promise((r) => setTimeout(r, 10)); // nobody reads it yet
        continue;
      }
      if (code !== 'ENOENT') throw new UsageError(`${shown}: ${code}`);
      try {
        return fs.openSync(target, c.O_WRONLY | c.O_CREAT | c.O_EXCL | c.O_NOFOLLOW, 0o600);
      } catch (e2) {
        const code2 = (e2 as NodeJS.ErrnoException).code ?? 'EIO';
        if (code2 === 'EEXIST') continue; // made meanwhile: look again
        throw new UsageError(`${shown}: ${code2}`);
      }
    }
    try {
      checkOpened(probe, shown, 'fifo');
      // it has its reader: a blocking descriptor (what the writers expect), which opens at once
      return fs.openSync(target, c.O_WRONLY | c.O_NOFOLLOW);
    } finally {
      fs.closeSync(probe);
    }
  }
}
