// Wireshark's extcap protocol: what the interface, link types and config
// dialog look like. stdout carries only these lines.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { STRATEGIES } from './capture';
import { VERSION } from './sinks';

export const IFACE = 'unixsock';
export const DEFAULT_LINKTYPE = 147; // LINKTYPE_USER0

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
  return [`extcap {version=${VERSION}}${help ? `{help=${pathToFileURL(help).href}}` : ''}`, `interface {value=${IFACE}}{display=Unix sockets}`].join(
    '\n',
  );
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

interface Arg {
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
    extra: '{placeholder=/run/docker.sock}{validation=^[^\\s].{0,106}$}',
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
    extra: '{range=0,1073741823}{default=0}',
  },
  {
    call: 'comm',
    display: 'Command name',
    type: 'string',
    tooltip: 'Only messages sent or received by processes with this name (as in /proc/PID/comm, 15 bytes at most)',
    group: 'Filter',
    extra: '{validation=^.{1,15}$}',
  },
  {
    call: 'types',
    display: 'Socket types',
    type: 'multicheck',
    tooltip: 'Which kinds of Unix socket to capture (none checked: all)',
    group: 'Filter',
    values: [
      { value: 'stream', display: 'Stream (SOCK_STREAM)', default: true },
      { value: 'dgram', display: 'Datagram (SOCK_DGRAM)', default: true },
      { value: 'seqpacket', display: 'Sequenced packets (SOCK_SEQPACKET)', default: true },
    ],
  },
  {
    call: 'snaplen',
    display: 'Snap length',
    type: 'unsigned',
    tooltip: 'Bytes of each message to keep (0 keeps whole messages)',
    group: 'Capture',
    extra: '{range=0,1073741824}{default=0}',
  },
  {
    call: 'ring-size',
    display: 'Ring buffer (MiB)',
    type: 'unsigned',
    tooltip: 'Kernel ring buffer size, a power of two; raise it if messages are dropped',
    group: 'Capture',
    extra: '{range=1,1024}{default=64}',
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
    extra: '{range=147,162}{default=147}',
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

export function configText(): string {
  const lines: string[] = [];
  CONFIG_ARGS.forEach((a, i) => {
    lines.push(
      `arg {number=${i}}{call=--${a.call}}{display=${a.display}}{type=${a.type}}{tooltip=${a.tooltip}}${a.extra ?? ''}{group=${a.group}}`,
    );
    for (const v of a.values ?? []) {
      lines.push(`value {arg=${i}}{value=${v.value}}{display=${v.display}}{default=${v.default ? 'true' : 'false'}}`);
    }
  });
  return lines.join('\n');
}
