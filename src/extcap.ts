// Wireshark's extcap protocol: what the interface, link types and config
// dialog look like. stdout carries only these lines.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { STRATEGIES } from './capture';
import { UsageError } from './errors';
import {
  COMM_PATTERN,
  CONTAINER_PATTERN,
  LINKTYPE_MAX,
  LINKTYPE_MIN,
  PATH_PATTERN,
  PID_MAX,
  RING_DEFAULT_MIB,
  RING_SIZES_MIB,
  SNAPLEN_MAX,
  nsPattern,
} from './limits';
import { VERSION } from './version';

export const IFACE = 'unixsock';
export const DEFAULT_LINKTYPE = LINKTYPE_MIN; // LINKTYPE_USER0

/**
 * This project's README for Wireshark's Help button: beside a checkout's
 * extcap/unixsock, or where scripts/install-extcap.sh puts it (personal, then
 * system-wide); none found: no help link (Wireshark then offers none).
 */
export function helpFile(): string | undefined {
  const data = process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  const candidates = [
    path.resolve(path.dirname(process.execPath), '..', 'README.md'),
    path.join(data, 'unixsock', 'README.md'),
    '/usr/share/doc/unixsock/README.md',
  ];
  return candidates.find((f) => fs.existsSync(f));
}

export function interfacesText(): string {
  const help = helpFile();
  return [`extcap {version=${VERSION}}${help ? `{help=${pathToFileURL(help).href}}` : ''}`, `interface {value=${IFACE}}{display=Unix sockets}`].join('\n');
}

/**
 * The Wireshark version from --extcap-version (4.0 passes "4.0", later ones
 * "4.6.1" and the like), or undefined when absent or unreadable. Nothing
 * unixsock says depends on it: every line it gives works from 4.0 on (4.0
 * rejects editselector, which is not used). It is logged, so a report says
 * which Wireshark called.
 */
export function wiresharkVersion(v: string | undefined): { major: number; minor: number; text: string } | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})(?:\.\d{1,5})?/.exec(v ?? '');
  return m ? { major: Number(m[1]), minor: Number(m[2]), text: m[0] } : undefined;
}

export function dltsText(linktype = DEFAULT_LINKTYPE): string {
  return `dlt {number=${linktype}}{name=USER${linktype - 147}}{display=Unix socket messages (unixsock)}`;
}

export interface Arg {
  call: string;
  display: string;
  type: string;
  tooltip: string;
  group: string;
  extra?: string;
  values?: { value: string; display: string; default?: boolean }[];
}

/** The options dialog; every `call` is also a command-line option. */
export const CONFIG_ARGS: Arg[] = [
  {
    call: 'path',
    display: 'Socket path',
    type: 'string',
    tooltip: 'Only sockets bound to this path (either end). End with * for a prefix; @name for an abstract socket',
    group: 'Filter',
    extra: `{placeholder=/run/docker.sock}{validation=${PATH_PATTERN}}`,
  },
  {
    call: 'file',
    display: 'Socket file',
    type: 'fileselect',
    tooltip: 'Only the socket behind this file (matched by inode, so symlinks, relative paths and bind mounts work)',
    group: 'Filter',
    extra: '{mustexist=true}',
  },
  {
    call: 'pid',
    display: 'Process ID',
    type: 'unsigned',
    tooltip: 'Only messages sent or received by this process (0: any process)',
    group: 'Filter',
    extra: `{range=0,${PID_MAX}}{default=0}`,
  },
  {
    call: 'comm',
    display: 'Command name',
    type: 'string',
    tooltip: 'Only messages sent or received by processes with this name (as in /proc/PID/comm, 15 bytes at most)',
    group: 'Filter',
    extra: `{validation=${COMM_PATTERN}}`,
  },
  {
    call: 'container',
    display: 'Container',
    type: 'string',
    tooltip: 'Only messages sent or received by processes in this container: its name (docker ps NAMES) or the start of its id; it must be running',
    group: 'Filter',
    extra: `{validation=${CONTAINER_PATTERN}}`,
  },
  {
    call: 'types',
    display: 'Socket types',
    type: 'multicheck',
    tooltip: 'Which kinds of Unix socket to capture (none checked: all)',
    group: 'Filter',
    // none ticked by default: Wireshark 4.0 shows a multicheck's saved value (empty
    // until saved) rather than its defaults, so defaults of true showed unticked
    values: [
      { value: 'stream', display: 'Stream (SOCK_STREAM)' },
      { value: 'dgram', display: 'Datagram (SOCK_DGRAM)' },
      { value: 'seqpacket', display: 'Sequenced packets (SOCK_SEQPACKET)' },
    ],
  },
  // a tab of their own: the Filter tab's rows and the dialog's size stay as they were
  {
    call: 'pidns',
    display: 'PID namespace',
    type: 'string',
    tooltip:
      'Only messages sent or received by processes in this pid namespace: its inode number, pid:[N] as readlink /proc/PID/ns/pid prints it, or the file /proc/PID/ns/pid',
    group: 'Namespaces',
    extra: `{placeholder=pid:[4026531836]}{validation=${nsPattern('pid')}}`,
  },
  {
    call: 'netns',
    display: 'Network namespace',
    type: 'string',
    tooltip:
      'Only messages on sockets of this network namespace (either end): its inode number, net:[N] as readlink /proc/PID/ns/net prints it, or a file such as /proc/PID/ns/net or /run/netns/NAME',
    group: 'Namespaces',
    extra: `{placeholder=/run/netns/NAME}{validation=${nsPattern('net')}}`,
  },
  {
    call: 'snaplen',
    display: 'Snap length',
    type: 'unsigned',
    tooltip: 'Bytes of each message to keep (0 keeps whole messages)',
    group: 'Capture',
    extra: `{range=0,${SNAPLEN_MAX}}{default=0}`,
  },
  {
    call: 'ring-size',
    display: 'Ring buffer (MiB)',
    type: 'selector',
    tooltip: 'Kernel ring buffer size; raise it if messages are dropped',
    group: 'Capture',
    values: RING_SIZES_MIB.map((n) => ({ value: String(n), display: `${n} MiB`, default: n === RING_DEFAULT_MIB })),
  },
  {
    call: 'strategy',
    display: 'Attach strategy',
    type: 'selector',
    tooltip: 'How the probes attach to the kernel; auto picks the best this kernel allows',
    group: 'Capture',
    values: STRATEGIES.map((s) => ({ value: s, display: s === 'auto' ? 'Automatic' : s, default: s === 'auto' })),
  },
  {
    call: 'linktype',
    display: 'Link type (USERn)',
    type: 'unsigned',
    tooltip: 'LINKTYPE_USERn number for the records (147 = USER0); must match the unixsock dissector preference',
    group: 'Capture',
    extra: `{range=${LINKTYPE_MIN},${LINKTYPE_MAX}}{default=${LINKTYPE_MIN}}`,
  },
  {
    call: 'log-file',
    display: 'Log file',
    type: 'fileselect',
    tooltip: 'Write a log of the capture (strategy chosen, statistics) to this file',
    group: 'Debug',
    extra: '{mustexist=false}',
  },
  {
    call: 'debug',
    display: 'Debug log',
    type: 'boolflag',
    tooltip: 'Also log libbpf and per-batch details',
    group: 'Debug',
  },
];

/**
 * Whether this Wireshark takes an editable selector (type editselector): a
 * list to pick from that also takes a typed value. 4.0's extcap parser
 * refuses the type (checked: its binaries do not contain the word); 4.4's and
 * 4.6's take it; 4.2 is taken to as well (it is not in Debian to check).
 * Unknown version: the safe answer, no.
 */
export function takesEditSelector(version: string | undefined): boolean {
  const v = wiresharkVersion(version);
  return v !== undefined && (v.major > 4 || (v.major === 4 && v.minor >= 2));
}

/** The picker's list: the listening sockets as value lines of argument `call`. */
export type PickerValues = { value: string; display: string }[];

/**
 * The dialog's arguments for this Wireshark: the socket path field becomes an
 * editable selector of the live listening sockets ({reload=true}: the dialog's
 * reload button asks again); where the selector cannot be edited (4.0) the
 * path stays a text field and a separate "Listening socket" selector
 * (--socket, the same path filter) offers the list.
 */
export function configArgs(editable: boolean, picks: PickerValues = []): Arg[] {
  const args: Arg[] = [];
  for (const a of CONFIG_ARGS) {
    if (a.call !== 'path') {
      args.push(a);
    } else if (editable) {
      args.push({ ...a, type: 'editselector', extra: `{reload=true}{validation=${PATH_PATTERN}}`, values: picks });
    } else {
      args.push(a, {
        call: 'socket',
        display: 'Listening socket',
        type: 'selector',
        tooltip: 'Only this socket (either end): the sockets listening now, with the process holding each; Reload lists them again',
        group: 'Filter',
        extra: '{reload=true}',
        values: [{ value: '', display: '(any: see Socket path)', default: true }, ...picks],
      });
    }
  }
  return args;
}

export function configText(args: Arg[] = CONFIG_ARGS): string {
  const lines: string[] = [];
  args.forEach((a, i) => {
    lines.push(`arg {number=${i}}{call=--${a.call}}{display=${a.display}}{type=${a.type}}{tooltip=${a.tooltip}}${a.extra ?? ''}{group=${a.group}}`);
    for (const v of a.values ?? []) {
      // {enabled=true}: without it Wireshark shows a multicheck's boxes read-only (and unticked)
      lines.push(`value {arg=${i}}{value=${v.value}}{display=${v.display}}{default=${v.default ? 'true' : 'false'}}{enabled=true}`);
    }
  });
  return lines.join('\n');
}

/** What Wireshark asks at its start and for the options dialog. */
export interface ExtcapQuery {
  interfaces: boolean;
  dlts: boolean;
  config: boolean;
  iface: string | undefined;
  /** --extcap-version, as given */
  version?: string;
  /** --extcap-reload-option: only that argument's values */
  reload?: string;
}

/** The values of one argument, for Wireshark's reload button. */
export function reloadText(args: Arg[], call: string): string {
  const i = args.findIndex((a) => a.call === call);
  if (i < 0 || !/\{reload=true\}/.test(args[i].extra ?? '')) throw new UsageError(`--extcap-reload-option: "${call}" cannot be reloaded`);
  return (args[i].values ?? [])
    .map((v) => `value {arg=${i}}{value=${v.value}}{display=${v.display}}{default=${v.default ? 'true' : 'false'}}{enabled=true}`)
    .join('\n');
}

/**
 * The answer to a query (the text for stdout), undefined when argv asks for
 * none of them (a capture, a filter check...). The command line's parser and
 * the fast path (extcapQuery) both decide here, in this order.
 */
export async function extcapAnswer(q: ExtcapQuery, picker: () => Promise<PickerValues> = () => Promise.resolve([])): Promise<string | undefined> {
  if (q.interfaces) return interfacesText();
  if (q.iface !== undefined && q.iface !== IFACE) throw new UsageError(`unknown extcap interface "${q.iface}" (this tool offers "${IFACE}")`);
  if (q.dlts) return dltsText();
  if (q.config) {
    const args = configArgs(takesEditSelector(q.version), await picker());
    return q.reload !== undefined ? reloadText(args, q.reload) : configText(args);
  }
  return undefined;
}

const QUERY_FLAGS: Record<string, 'interfaces' | 'dlts' | 'config'> = {
  '--extcap-interfaces': 'interfaces',
  '--extcap-dlts': 'dlts',
  '--extcap-config': 'config',
};

/**
 * argv when it is exactly one of Wireshark's queries: --extcap-interfaces,
 * --extcap-dlts, --extcap-config, with --extcap-interface unixsock and
 * --extcap-version V (as "--name value" or "--name=value"), each at most once,
 * in any order. Anything else (another interface, an odd version, a second
 * value, any other word) is undefined, and the command line's parser decides.
 * It lets main answer before loading yargs: ~20 ms of each start on this
 * 2-vCPU VM (bench/run.ts, start-up), and Wireshark starts every extcap at
 * its own start and again for the options dialog.
 */
export function extcapQuery(argv: readonly string[]): ExtcapQuery | undefined {
  const q: ExtcapQuery = { interfaces: false, dlts: false, config: false, iface: undefined };
  let version: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const flag = QUERY_FLAGS[arg];
    if (flag !== undefined) {
      if (q[flag]) return undefined;
      q[flag] = true;
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg : arg.slice(0, eq);
    if (name !== '--extcap-interface' && name !== '--extcap-version') return undefined;
    const value = eq < 0 ? argv[++i] : arg.slice(eq + 1);
    if (name === '--extcap-interface') {
      if (q.iface !== undefined || value !== IFACE) return undefined;
      q.iface = value;
    } else {
      if (version !== undefined || value === undefined || !/^\d[\w.+~]*$/.test(value)) return undefined;
      version = value;
    }
  }
  if (version !== undefined) q.version = version;
  return q.interfaces || q.dlts || q.config ? q : undefined;
}
