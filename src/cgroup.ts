// Which container a cgroup belongs to, from its path alone, and where the
// kernel's cgroup ids (bpf_get_current_cgroup_id: the inode of the cgroup's
// directory in the v2 hierarchy) live on this machine.
//
// Runtimes name a container's cgroup after its id; the layouts differ by
// runtime, by cgroup driver (cgroupfs or systemd) and by version:
//   docker, cgroupfs driver          /docker/<64 hex>
//   docker, systemd driver           /system.slice/docker-<64 hex>.scope
//   containerd (ctr, nerdctl)        /<namespace>/<id>   (cgroupfs: /default/<id>)
//                                    /system.slice/nerdctl-<64 hex>.scope
//   kubernetes (CRI), cgroupfs       /kubepods/<qos>/pod<uid>/<64 hex>
//                                    /kubepods/pod<uid>/<64 hex>            (guaranteed QoS)
//   kubernetes (CRI), systemd        /kubepods.slice/kubepods-<qos>.slice/
//                                      kubepods-<qos>-pod<uid with _>.slice/cri-containerd-<64 hex>.scope
//                                    (cri-o: crio-<64 hex>.scope; dockershim: docker-<64 hex>.scope)
//   podman, systemd                  /machine.slice/libpod-<64 hex>.scope[/container]
//                                    (rootless: /user.slice/user-<uid>.slice/user@<uid>.service/
//                                      user.slice/libpod-<64 hex>.scope)
//   podman, cgroupfs                 /libpod_parent/libpod-<64 hex>
//   systemd-nspawn / machinectl      /machine.slice/machine-<name>.scope[/payload]
//                                    (the name escaped: "-" is \x2d)
//   lxc                              /lxc/<name>, /lxc.payload.<name> (lxc 4+ on v2)
// A path below a container's own cgroup (systemd inside it, podman's
// "container" leaf, nspawn's "payload") belongs to the same container.
// The same paths appear on the v2 line of /proc/PID/cgroup ("0::/docker/...")
// and on every v1 hierarchy's line of a hybrid machine like this one.
import * as fs from 'node:fs';
import * as path from 'node:path';

export type Runtime = 'docker' | 'containerd' | 'cri-o' | 'podman' | 'systemd-nspawn' | 'lxc' | 'kubernetes';

export interface ContainerRef {
  runtime: Runtime;
  /** the runtime's container id (64 hex for docker/containerd/cri-o/podman), or the machine/container name */
  id: string;
  /** the kubernetes pod uid, when the path says so */
  pod?: string;
  /** the cgroup path of the container itself (the longest prefix that names it) */
  cgroup: string;
}

const HEX64 = /^[0-9a-f]{64}$/;
/** systemd unit name escaping: \xNN */
const unescapeUnit = (s: string) => s.replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));

/** The pod uid in a kubepods segment ("pod<uid>" with - or _ separators), normalized to dashes. */
function podUid(seg: string): string | undefined {
  const m = /(?:^|-)pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$/.exec(seg);
  return m ? m[1].replace(/_/g, '-') : undefined;
}

/** One path segment that names a container by itself (prefix-id.scope and the like). */
function segmentContainer(seg: string): { runtime: Runtime; id: string } | undefined {
  let m = /^(docker|cri-containerd|crio|libpod|nerdctl)-([0-9a-f]{64})(?:\.scope)?$/.exec(seg);
  if (m) {
    const runtime: Record<string, Runtime> = {
      docker: 'docker',
      'cri-containerd': 'containerd',
      crio: 'cri-o',
      libpod: 'podman',
      nerdctl: 'containerd',
    };
    return { runtime: runtime[m[1]], id: m[2] };
  }
  m = /^machine-(.+)\.scope$/.exec(seg);
  if (m) return { runtime: 'systemd-nspawn', id: unescapeUnit(m[1]) };
  m = /^lxc\.payload\.(.+)$/.exec(seg);
  if (m) return { runtime: 'lxc', id: m[1] };
  return undefined;
}

/**
 * The container a cgroup path (as /proc/PID/cgroup prints it, starting with
 * "/") belongs to, or undefined for a host cgroup. Never throws: anything it
 * does not know is a host cgroup.
 */
export function containerOfCgroup(cgPath: string): ContainerRef | undefined {
  if (!cgPath.startsWith('/')) return undefined;
  const segs = cgPath.split('/').filter((s) => s.length > 0);
  let pod: string | undefined;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i];
    const prefix = '/' + segs.slice(0, i + 1).join('/');
    pod = podUid(seg) ?? pod;
    // podman's conmon runs in libpod-conmon-<id>.scope: the monitor, not the container
    if (seg.startsWith('libpod-conmon-')) return undefined;
    const s = segmentContainer(seg);
    if (s) return { ...s, pod, cgroup: prefix };
    if (i >= 1 && HEX64.test(seg)) {
      // cgroupfs drivers: <parent>/<id>; kubelet's names no runtime
      if (segs[i - 1] === 'docker') return { runtime: 'docker', id: seg, cgroup: prefix };
      if (pod) return { runtime: 'kubernetes', id: seg, pod, cgroup: prefix };
    }
    if (i === 1 && segs[0] === 'lxc') return { runtime: 'lxc', id: seg, cgroup: prefix };
    // containerd's default cgroupfs layout: /<namespace>/<id> for its namespaces ("default", "k8s.io", "moby")
    if (i === 1 && (segs[0] === 'default' || segs[0] === 'k8s.io') && /^[A-Za-z0-9][A-Za-z0-9_.-]{0,75}$/.test(seg)) {
      return { runtime: 'containerd', id: seg, cgroup: prefix };
    }
  }
  return undefined;
}

/** The v2 (unified) line of /proc/PID/cgroup ("0::/path"), or undefined. */
export function unifiedPathOf(procCgroup: string): string | undefined {
  for (const line of procCgroup.split('\n')) {
    if (line.startsWith('0::')) return line.slice(3);
  }
  return undefined;
}

/**
 * Where the v2 hierarchy is mounted: /sys/fs/cgroup on a pure v2 machine,
 * /sys/fs/cgroup/unified on a hybrid one (systemd's layout, this machine's),
 * read from mountinfo (field 9 is the file system type after " - ").
 */
export function unifiedMount(mountinfo = '/proc/self/mountinfo'): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(mountinfo, 'utf8');
  } catch {
    return undefined;
  }
  const found: string[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0 || !line.slice(sep + 3).startsWith('cgroup2 ')) continue;
    const f = line.slice(0, sep).split(' ');
    if (f.length >= 5) found.push(f[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  }
  // the host's own view first (a container runtime may mount more copies)
  return found.find((p) => p === '/sys/fs/cgroup') ?? found.find((p) => p === '/sys/fs/cgroup/unified') ?? found[0];
}

/** The kernel's id of a cgroup v2 directory: its inode number. */
export function cgroupIdOf(dir: string): bigint | undefined {
  try {
    const st = fs.statSync(dir, { bigint: true });
    return st.isDirectory() ? st.ino : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The cgroup id → path table of the v2 hierarchy under root, by walking it
 * (bounded: a machine with more than `maxDirs` cgroups gets a partial table
 * rather than a long stall). Paths are relative to the hierarchy's root and
 * start with "/", as /proc/PID/cgroup prints them.
 */
export function scanCgroups(root: string, maxDirs = 50000, maxDepth = 32): Map<bigint, string> {
  const out = new Map<bigint, string>();
  const walk = (dir: string, rel: string, depth: number) => {
    if (out.size >= maxDirs || depth > maxDepth) return;
    const id = cgroupIdOf(dir);
    if (id === undefined) return;
    out.set(id, rel || '/');
    let ents: fs.Dirent[];
    try {
      ents = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of ents) {
      if (e.isDirectory()) walk(path.join(dir, e.name), `${rel}/${e.name}`, depth + 1);
    }
  };
  walk(root, '', 0);
  return out;
}

/** The depth of a cgroup path below the root ("/" is 0, "/docker/ID" is 2): the level bpf_get_current_ancestor_cgroup_id takes. */
export function cgroupLevel(cgPath: string): number {
  return cgPath.split('/').filter((s) => s.length > 0).length;
}
