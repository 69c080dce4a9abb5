// Container names from the runtime's API socket (Docker's, or Podman's
// Docker-compatible one): GET /containers/json?all=1 gives every container's
// id and names in one reply.
//
// The capture runs with elevated privileges and the reply comes from
// whatever listens on that path, so the reply is hostile input: the socket
// file must be a socket owned by root (or by the capturing user), the reply is
// cut off past MAX_REPLY bytes and after TIMEOUT_MS, and only ids of 64 hex
// digits with names of Docker's own alphabet are kept. Asking never blocks the
// capture: it is one asynchronous request at a time, and its answer only
// fills a cache.
import * as fs from 'node:fs';
import * as http from 'node:http';

/** The sockets asked, in order: Docker's, then rootful Podman's compatible API. */
export const RUNTIME_SOCKETS = ['/run/docker.sock', '/run/podman/podman.sock'];
/** A reply larger than this is dropped (a host with 10,000 containers answers about 20 MB with sizes off; names only need the first part). */
export const MAX_REPLY = 16 << 20;
export const TIMEOUT_MS = 2000;
/** Docker's own name rule (daemon/names: [a-zA-Z0-9][a-zA-Z0-9_.-]+), with a length bound. */
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const ID = /^[0-9a-f]{64}$/;

/**
 * Whether a runtime socket may be asked: a socket owned by root or by this
 * process's user (a socket anyone could have made is not a runtime's).
 */
export function trustedSocket(p: string): boolean {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    return false;
  }
  const uid = process.getuid?.() ?? 0;
  return st.isSocket() && (st.uid === 0 || st.uid === uid);
}

/** Container id → name, from the list reply; anything malformed is skipped. */
export function namesFromList(body: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (!Array.isArray(body)) return out;
  for (const c of body.slice(0, 100000)) {
    if (typeof c !== 'object' || c === null) continue;
    const { Id, Names } = c as { Id?: unknown; Names?: unknown };
    if (typeof Id !== 'string' || !ID.test(Id) || !Array.isArray(Names)) continue;
    // "/web-1"; links add "/other/alias" names: the first plain one is the container's own
    const name = Names.filter((n): n is string => typeof n === 'string')
      .map((n) => n.replace(/^\//, ''))
      .find((n) => NAME.test(n));
    if (name) out.set(Id, name);
  }
  return out;
}

/** One GET over a Unix socket, bounded in size and time; rejects on anything but a 200 with JSON. */
export function getJson(socketPath: string, urlPath: string, timeoutMs = TIMEOUT_MS, maxBytes = MAX_REPLY): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let settled = false;
    // the first outcome counts; the connection is then dropped without an error of its own
    // (an 'error' emitted after that, with nobody listening, would end the capture)
    const settle = (e: Error | undefined, v?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (e) {
        reject(e);
        req.destroy();
      } else {
        resolve(v);
      }
    };
    const req = http.get({ socketPath, path: urlPath, headers: { Host: 'docker' } }, (res) => {
      res.on('error', (e) => settle(e));
      if (res.statusCode !== 200) {
        settle(new Error(`${urlPath}: HTTP ${res.statusCode}`));
        return;
      }
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        if (settled) return;
        n += c.length;
        if (n > maxBytes) settle(new Error(`${urlPath}: reply larger than ${maxBytes} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => {
        if (settled) return;
        try {
          settle(undefined, JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch {
          settle(new Error(`${urlPath}: reply is not JSON`));
        }
      });
    });
    req.on('error', (e) => settle(e));
    const timer = setTimeout(() => settle(new Error(`${urlPath}: no reply within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
  });
}

/**
 * Container names, cached. `name(id)` answers from the cache at once;
 * `refresh()` asks the runtimes again (all at once; callers rate-limit).
 */
export class ContainerNames {
  private names = new Map<string, string>();
  private inflight?: Promise<void>;
  readonly sockets: string[];
  /** the last failure, for the log */
  lastError?: string;

  constructor(
    sockets: string[] = RUNTIME_SOCKETS,
    private readonly timeoutMs = TIMEOUT_MS,
  ) {
    this.sockets = sockets;
  }

  name(id: string): string | undefined {
    return this.names.get(id);
  }

  /** Looks names up again; resolves when done (never rejects). */
  refresh(): Promise<void> {
    // All runtimes at once: asked one after another, a socket that accepts and
    // never answers held the next runtime's names back for its whole timeout
    // (2 s), longer than a capture's end waits for names (1 s). The answers
    // are applied in the sockets' order, so a later socket's name still wins.
    this.inflight ??= (async () => {
      const lists = await Promise.all(
        this.sockets.filter(trustedSocket).map(async (s) => {
          try {
            return namesFromList(await getJson(s, '/containers/json?all=1', this.timeoutMs));
          } catch (e) {
            this.lastError = `${s}: ${(e as Error).message}`;
            return new Map<string, string>();
          }
        }),
      );
      for (const list of lists) for (const [id, name] of list) this.names.set(id, name);
    })().finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  /** All cached ids whose name is `name`, or that start with `prefix` (hex). */
  find(nameOrPrefix: string): string[] {
    const byName = [...this.names].filter(([, n]) => n === nameOrPrefix).map(([id]) => id);
    if (byName.length) return byName;
    if (!/^[0-9a-f]{1,64}$/.test(nameOrPrefix)) return [];
    return [...this.names.keys()].filter((id) => id.startsWith(nameOrPrefix));
  }
}
