// Who a cgroup id is: its path in the v2 hierarchy, the container its path
// names, and that container's name from the runtime. The kernel records carry
// only the cgroup id (a number); everything here happens in user space, from
// caches, so the capture never waits for it.
import * as path from 'node:path';
import { containerOfCgroup, scanCgroups, unifiedMount, type Runtime } from './cgroup';
import { ContainerNames, RUNTIME_SOCKETS } from './docker';

export interface Identity {
  cgroupId: bigint;
  /** path in the v2 hierarchy ("/docker/<id>"), '' when not found */
  path: string;
  runtime?: Runtime;
  containerId?: string;
  containerName?: string;
  pod?: string;
}

/** How long a cgroup id that was not found stays unknown before the tree is walked again for it. */
const RESCAN_MS = 100;
/** How often the runtime is asked again for a container it did not name yet. */
const RENAME_MS = 500;

export class IdentityResolver {
  readonly root: string | undefined;
  private paths = new Map<bigint, string>();
  private lastScan = 0;
  readonly names: ContainerNames;
  private lastAsk = 0;

  constructor(opts: { cgroupRoot?: string; names?: ContainerNames } = {}) {
    this.root = opts.cgroupRoot ?? unifiedMount();
    this.names = opts.names ?? new ContainerNames();
  }

  /** Walks the cgroup tree (at most every RESCAN_MS unless forced) and asks the runtime for names. */
  async prime(): Promise<void> {
    this.rescan(true);
    await this.names.refresh();
  }

  /** The runtime was just asked (by prime): the next refreshNames waits RENAME_MS. */
  lastAskNow(): void {
    this.lastAsk = Date.now();
  }

  private rescan(force = false): void {
    if (!this.root || (!force && Date.now() - this.lastScan < RESCAN_MS)) return;
    this.lastScan = Date.now();
    this.paths = scanCgroups(this.root);
  }

  /** What is known now about a cgroup id (a rescan when it is new; names come later through refreshNames). */
  lookup(cgroupId: bigint): Identity {
    let p = this.paths.get(cgroupId);
    if (p === undefined) {
      this.rescan();
      p = this.paths.get(cgroupId);
    }
    const id: Identity = { cgroupId, path: p ?? '' };
    const c = p ? containerOfCgroup(p) : undefined;
    if (c) {
      id.runtime = c.runtime;
      id.containerId = c.id;
      id.pod = c.pod;
      // nspawn, lxc and ctr containers are named by their cgroup already
      id.containerName = this.names.name(c.id) ?? (/^[0-9a-f]{64}$/.test(c.id) ? undefined : c.id);
    }
    return id;
  }

  /** Every container cgroup of the last walk (nested ones too), as lookup() tells them. */
  containers(): Identity[] {
    const out: Identity[] = [];
    for (const [cg, p] of this.paths) if (containerOfCgroup(p)) out.push(this.lookup(cg));
    return out;
  }

  /** Asks the runtimes for names again, at most every RENAME_MS; resolves when the answer is in. */
  async refreshNames(force = false): Promise<boolean> {
    if (!force && Date.now() - this.lastAsk < RENAME_MS) return false;
    this.lastAsk = Date.now();
    await this.names.refresh();
    return true;
  }

  /** The cgroup directory of a container given by name or id prefix, from the tree and the runtime's names. */
  async findContainer(nameOrPrefix: string): Promise<{ ids: string[]; cgroups: string[] }> {
    await this.prime();
    const ids = new Set(this.names.find(nameOrPrefix));
    const cgroups: string[] = [];
    for (const p of this.paths.values()) {
      const c = containerOfCgroup(p);
      if (!c || c.cgroup !== p) continue;
      if (ids.has(c.id) || (ids.size === 0 && (c.id === nameOrPrefix || (/^[0-9a-f]{4,64}$/.test(nameOrPrefix) && c.id.startsWith(nameOrPrefix))))) {
        ids.add(c.id);
        cgroups.push(p);
      }
    }
    return { ids: [...ids], cgroups };
  }

  /** The absolute directory of a cgroup path. */
  dir(cgPath: string): string | undefined {
    return this.root ? path.join(this.root, cgPath) : undefined;
  }
}

/** "web-1", or the id's first 12 digits as docker ps shows it, or '' for a host cgroup. */
export function containerLabel(id: Identity | undefined): string {
  if (!id?.containerId) return '';
  return id.containerName ?? id.containerId.slice(0, 12);
}

/** The runtime sockets to ask: DOCKER_HOST's when it names a Unix socket (not for a capture with capabilities: its environment is the member's), then the usual ones. */
export function runtimeSockets(env: NodeJS.ProcessEnv, privileged: boolean): string[] {
  const out: string[] = [];
  const h = env.DOCKER_HOST;
  if (!privileged && h && h.startsWith('unix://')) out.push(h.slice('unix://'.length));
  for (const s of RUNTIME_SOCKETS) if (!out.includes(s)) out.push(s);
  return out;
}

/** What the capture engine offers for names (src/native.ts). */
export interface IdentitySink {
  unknownCgroups(): bigint[];
  setIdentity(cgroupId: bigint, containerId: string, name: string, path: string): void;
}

/** Tries for a cgroup whose directory is not found yet (a container starting): 20 × 50 ms. */
const FIND_TRIES = 20;
/** Name requests for a container the runtime did not name yet: 10 × RENAME_MS. */
const NAME_TRIES = 10;

/**
 * Answers the pcapng writer's questions (the cgroup ids it met) beside the
 * capture, every `everyMs`: one tick at a time, never awaited by the capture.
 */
export class IdentityFeeder {
  private findTries = new Map<bigint, number>();
  private nameTries = new Map<bigint, number>();
  private busy = false;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly resolver: IdentityResolver,
    private readonly sink: IdentitySink,
  ) {}

  private current?: Promise<void>;

  start(everyMs = 50): void {
    // the containers already running, told to the writer before their first
    // records when the runtime answers quickly enough (it is not waited for)
    void this.preload();
    this.timer = setInterval(() => void this.run(), everyMs);
    this.timer.unref();
  }

  private async preload(): Promise<void> {
    await this.resolver.prime();
    this.resolver.lastAskNow();
    for (const id of this.resolver.containers()) {
      this.answer(id.cgroupId, id);
      if (id.containerId && !id.containerName && /^[0-9a-f]{64}$/.test(id.containerId)) this.nameTries.set(id.cgroupId, NAME_TRIES);
    }
  }

  private run(): Promise<void> {
    this.current ??= this.tick().finally(() => (this.current = undefined));
    return this.current;
  }

  /**
   * Stops asking; before that, answers what the writer met last (a container
   * whose only messages came in the capture's last moments), waiting at most
   * maxMs for the runtime: its names then still reach the file.
   */
  async finish(maxMs = 1000): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const deadline = new Promise<void>((r) => setTimeout(r, maxMs).unref());
    await Promise.race([
      (async () => {
        await this.current;
        await this.run();
        if (this.nameTries.size) {
          await this.resolver.refreshNames(true);
          await this.run();
        }
      })(),
      deadline,
    ]);
  }

  private answer(cg: bigint, id: Identity): void {
    this.sink.setIdentity(cg, id.containerId ?? '', id.containerName ?? '', id.path);
  }

  async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (const cg of this.sink.unknownCgroups()) this.findTries.set(cg, FIND_TRIES);
      for (const [cg, left] of this.findTries) {
        const id = this.resolver.lookup(cg);
        if (!id.path && left > 1) {
          this.findTries.set(cg, left - 1);
          continue;
        }
        this.findTries.delete(cg);
        this.answer(cg, id);
        if (id.containerId && !id.containerName) this.nameTries.set(cg, NAME_TRIES);
      }
      if (this.nameTries.size) {
        // asked again at most every RENAME_MS; a name the cache has meanwhile is answered at once
        const asked = await this.resolver.refreshNames();
        for (const [cg, left] of this.nameTries) {
          const id = this.resolver.lookup(cg);
          if (id.containerName) this.answer(cg, id);
          if (id.containerName || (asked && left <= 1)) this.nameTries.delete(cg);
          else if (asked) this.nameTries.set(cg, left - 1);
        }
      }
    } finally {
      this.busy = false;
    }
  }
}
