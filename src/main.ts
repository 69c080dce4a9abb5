// unixsock: the command line and the Wireshark extcap front end. Thin: it
// parses arguments and hands off to the capture engine and the sinks.
import { refuseDebugger } from './guard'; // first: see guard.ts
import * as fs from 'node:fs';
import { STRATEGIES, UnixCapture, loadEngine, readerGone, ringBytesFromMiB, type CaptureSummary, type Strategy } from './capture';
import { CaptureError, UsageError } from './errors';
import { DEFAULT_LINKTYPE, extcapAnswer, extcapQuery, wiresharkVersion, type PickerValues } from './extcap';
import { parseFilter, resolveCgroupTerms, toKernelFilter, type Term } from './filter';
import { IdentityResolver, runtimeSockets } from './identity';
import { ContainerNames } from './docker';
import { LINKTYPE_MAX, LINKTYPE_MIN, RING_DEFAULT_MIB, SNAPLEN_MAX } from './limits';
import { closeLog, log, logFd, openLog } from './log';
import { openFifo, openUserOutput, privileged, restrictedUid } from './privilege';
import { WriteError } from './pcapng';
import { catchStops, onStop, stopRequested } from './signals';
import { PcapngSink, TextSink, type Sink } from './sinks';
import { VERSION } from './version';

function parser(argv: string[]) {
  // required here, not imported at the top: evaluating the bundled yargs and
  // building this parser cost ~20 ms of every start, and Wireshark's
  // start-up queries are answered without it (main, extcapQuery)
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- lazy, as said above
  const yargs = require('yargs/yargs') as typeof import('yargs/yargs');
  return yargs(argv)
    .scriptName('unixsock')
    .usage(
      'Usage: $0 [options] [capture filter]\n\n' +
        'Capture every message sent on Unix domain sockets on this host (eBPF), as a\n' +
        'readable dump, as pcapng for Wireshark, or as Wireshark\'s "Unix sockets" interface.\n\n' +
        'Capture filter: terms joined with "and", each optionally preceded by "not":\n' +
        '  path P (exact; P* prefix; @name abstract), file F (socket file, by inode),\n' +
        '  pid N, comm NAME (sender or peer), type stream,dgram,seqpacket,\n' +
        '  container NAME|ID-prefix, cgroup PATH (sender or peer in it or below it),\n' +
        '  pidns NS (sender or peer process), netns NS (sending socket or its peer):\n' +
        '  NS is an inode number, pid:[N] / net:[N] as readlink prints it, or a file\n' +
        '  like /proc/PID/ns/pid or /run/netns/NAME',
    )
    .version(false)
    .help(false)
    .strictOptions()
    .exitProcess(false)
    .parserConfiguration({ 'unknown-options-as-args': false })
    .fail((msg, err) => {
      throw new UsageError(msg || err?.message || 'bad arguments');
    })
    .options({
      w: { alias: 'write', type: 'string', describe: 'write pcapng to this file (- for stdout)', group: 'Output:' },
      hex: { type: 'boolean', describe: 'dump payloads as hex instead of text', group: 'Output:' },
      c: { alias: 'count', type: 'number', describe: 'stop after this many messages', group: 'Output:' },
      duration: { type: 'number', describe: 'stop after this many seconds', group: 'Output:' },
      quiet: { alias: 'q', type: 'boolean', describe: 'no statistics on stderr', group: 'Output:' },
      path: { type: 'string', describe: 'socket path (P* prefix, @name abstract)', group: 'Filter:' },
      socket: { type: 'string', hidden: true }, // the dialog's "Listening socket" (Wireshark 4.0): a path too
      file: { type: 'string', describe: 'socket file, matched by inode', group: 'Filter:' },
      pid: { type: 'string', describe: 'sender or peer pid', group: 'Filter:' },
      comm: { type: 'string', describe: 'sender or peer command name', group: 'Filter:' },
      types: { type: 'string', describe: 'socket types: stream,dgram,seqpacket', group: 'Filter:' },
      container: { type: 'string', describe: 'sender or peer in this container (name or id prefix)', group: 'Filter:' },
      cgroup: { type: 'string', describe: 'sender or peer in this cgroup v2 path or below', group: 'Filter:' },
      pidns: { type: 'string', describe: 'sender or peer in this pid namespace (inode, pid:[N] or /proc/PID/ns/pid)', group: 'Filter:' },
      netns: { type: 'string', describe: 'socket or its peer in this network namespace (inode, net:[N] or a file)', group: 'Filter:' },
      snaplen: { type: 'number', default: 0, describe: 'bytes of each message to keep (0: all)', group: 'Capture:' },
      'ring-size': { type: 'number', default: RING_DEFAULT_MIB, describe: 'kernel ring buffer in MiB (power of two)', group: 'Capture:' },
      strategy: { type: 'string', default: 'auto', describe: `attach strategy: ${STRATEGIES.join(', ')}`, group: 'Capture:' },
      linktype: { type: 'number', default: DEFAULT_LINKTYPE, describe: `LINKTYPE_USERn number (${LINKTYPE_MIN}-${LINKTYPE_MAX})`, group: 'Capture:' },
      'metadata-only': { type: 'boolean', describe: 'capture no payload bytes', group: 'Capture:' },
      'log-file': { type: 'string', describe: 'log to this file', group: 'Capture:' },
      debug: { type: 'boolean', describe: 'verbose log (libbpf included)', group: 'Capture:' },
      'extcap-interfaces': { type: 'boolean', hidden: true },
      'extcap-version': { type: 'string', hidden: true },
      'extcap-cleanup-postkill': { type: 'boolean', hidden: true },
      'extcap-interface': { type: 'string', hidden: true },
      'extcap-dlts': { type: 'boolean', hidden: true },
      'extcap-config': { type: 'boolean', hidden: true },
      'extcap-capture-filter': { type: 'string', hidden: true },
      'extcap-reload-option': { type: 'string', hidden: true },
      'extcap-control-in': { type: 'string', hidden: true },
      'extcap-control-out': { type: 'string', hidden: true },
      capture: { type: 'boolean', hidden: true },
      fifo: { type: 'string', hidden: true },
      help: { alias: 'h', type: 'boolean', describe: 'show this help' },
      version: { alias: 'V', type: 'boolean', describe: 'show the version' },
    })
    .example('$0', 'dump every Unix socket message as text')
    .example('$0 path /run/docker.sock', 'only the Docker API')
    .example('$0 --hex pid 1234 and not type dgram', 'one process, stream and seqpacket, as hex')
    .example('$0 -w cap.pcapng -c 1000 file /tmp/.X11-unix/X0', 'X11 traffic to a file')
    .example('$0 netns /run/netns/blue', 'sockets of one network namespace (ip netns)')
    .example('$0 -w - | wireshark -k -i -', 'live into Wireshark (or over ssh with sshdump)')
    .wrap(Math.min(100, process.stdout.columns || 100));
}

type Args = ReturnType<ReturnType<typeof parser>['parseSync']>;

function number(v: number | undefined, name: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < min || v > max) throw new UsageError(`--${name}: expected a whole number from ${min} to ${max}`);
  return v;
}

/** Filter terms from the options and the capture filter, in that order. */
function filterTerms(a: Args, text: string): Term[] {
  const terms: Term[] = [];
  if (a.path) terms.push({ kind: 'path', neg: false, value: a.path });
  if (a.socket) terms.push({ kind: 'path', neg: false, value: a.socket });
  if (a.file) terms.push({ kind: 'file', neg: false, value: a.file });
  if (a.pid && a.pid !== '0') terms.push({ kind: 'pid', neg: false, value: a.pid }); // 0: the dialog's "any"
  if (a.comm) terms.push({ kind: 'comm', neg: false, value: a.comm });
  if (a.types) terms.push({ kind: 'type', neg: false, value: a.types });
  if (a.container) terms.push({ kind: 'container', neg: false, value: a.container });
  if (a.cgroup) terms.push({ kind: 'cgroup', neg: false, value: a.cgroup });
  if (a.pidns) terms.push({ kind: 'pidns', neg: false, value: a.pidns });
  if (a.netns) terms.push({ kind: 'netns', neg: false, value: a.netns });
  return terms.concat(parseFilter(text));
}

/** The dialog's socket picker: the listening sockets now, with their processes and containers. */
async function pickerValues(): Promise<PickerValues> {
  const { listeners, listenerLabel } = await import('./sockets');
  const names = new ContainerNames(runtimeSockets(process.env, privileged()), 500);
  return (await listeners(names)).map((l) => ({ value: l.path, display: listenerLabel(l) }));
}

function stderrLine(s: string): void {
  try {
    fs.writeSync(2, s + '\n');
  } catch {
    // nowhere left to report
  }
}

function summaryLine(s: CaptureSummary): string {
  let line = `unixsock: ${s.assembler.messages} messages (${s.capturedBytes} of ${s.bytes} bytes) captured with ${s.strategy}, ${s.dropped} dropped`;
  if (s.dropped) line += ' (raise --ring-size)';
  return line;
}

async function capture(a: Args, sink: () => Sink, filterText: string, extcap: boolean): Promise<number> {
  const strategy = a.strategy as Strategy;
  if (!STRATEGIES.includes(strategy)) throw new UsageError(`--strategy: "${a.strategy}" is not one of ${STRATEGIES.join(', ')}`);
  const snaplen = number(a.snaplen, 'snaplen', 0, SNAPLEN_MAX) ?? 0;
  const count = number(a.c, 'count', 1, Number.MAX_SAFE_INTEGER);
  if (a.duration !== undefined && !(a.duration > 0)) throw new UsageError('--duration: expected a positive number of seconds');
  const filter = toKernelFilter(
    await resolveCgroupTerms(filterTerms(a, filterText), () => new IdentityResolver({ names: new ContainerNames(runtimeSockets(process.env, privileged())) })),
  );
  const ringBytes = ringBytesFromMiB(a['ring-size']);
  catchStops(); // the output is open: a stop from now on ends with a whole pcapng
  // The probes first, the pcapng headers after: Wireshark (and any reader of
  // -w -) shows the capture as running once the section header arrives, so it
  // is written only when the probes are attached and the ring is mapped. The
  // other way round, messages sent in the first 0.15-0.2 s (2 s with
  // --ring-size 1024) were missing from a capture that looked started. The
  // output itself was opened (and checked) before: a bad one still fails first.
  const t0 = process.hrtime.bigint();
  let cap: UnixCapture;
  try {
    cap = UnixCapture.open({
      filter,
      strategy,
      ringBytes,
      snaplen,
      payload: !a['metadata-only'],
      libbpfLogFd: a.debug ? logFd() : undefined,
      ownUid: restrictedUid(),
    });
  } catch (e) {
    // the headers all the same, then the error: dumpcap reading a fifo or
    // pipe that ends before any header adds an error of its own (tshark 4.0
    // prints an empty "tshark:" line and the GUI an empty dialog)
    try {
      sink();
    } catch {
      // the first error is the one reported
    }
    throw e;
  }
  for (const at of cap.attempts) {
    log.info(at.ok ? `strategy ${at.strategy}: attached${at.note ? ` (${at.note})` : ''}` : `strategy ${at.strategy}: rejected: ${at.error}`);
  }
  let out: Sink;
  try {
    out = sink();
  } catch (e) {
    await cap.stop();
    throw e;
  }
  log.info(
    `capturing: probes attached and ring mapped in ${Number((process.hrtime.bigint() - t0) / 1_000_000n)} ms (${cap.timings}; ` +
      `${performance.now().toFixed(0)} ms since the process started), then the headers written`,
  );
  let failure: Error | undefined;
  let finish: (why: string) => void = () => {};
  const done = new Promise<string>((resolve) => {
    finish = resolve;
  });
  // the first failure is the one reported; it ends the capture
  const fail = (e: unknown) => {
    failure ??= e as Error;
    finish('error');
  };
  out.start(cap, count, () => finish('count'), fail);
  const sched = cap.writerScheduling();
  if (sched) log.info(`writer thread ${sched.tid}: ${sched.text}`);
  cap.watchWriter((note) => log.info(note));
  // said once the reader runs too (mapping a large ring takes a moment)
  if (!extcap && !a.quiet) {
    stderrLine(`unixsock: capturing Unix socket messages with ${cap.strategy}${filterText ? ` (filter: ${filterText})` : ''}`);
  }
  // (SIGPIPE stays ignored, as Node sets it: a reader that went away shows as EPIPE)
  // a stop that came during start-up (src/signals.ts) ends the capture at once
  onStop((sig) => finish(sig));
  const showStats = !extcap && !a.quiet && process.stderr.isTTY;
  let lastStats = Date.now();
  // drops while they happen, at most once a second: into the log, and into
  // the text dump where they fall (a pcapng marks the next packet: DROPS_BEFORE)
  let lastDropCheck = Date.now();
  let seenLostMessages = 0;
  let seenLostFragments = 0;
  const timer = setInterval(() => {
    try {
      out.tick();
    } catch (e) {
      fail(e);
    }
    if (count !== undefined && cap.messages() >= count) finish('count');
    // the reader of a pipe or fifo went away while nothing was written: stop as on EPIPE
    if (readerGone(out.fd)) finish('reader gone');
    if (Date.now() - lastDropCheck >= 1000) {
      lastDropCheck = Date.now();
      const st = cap.stats();
      if (st.lostMessages > seenLostMessages || st.lostFragments > seenLostFragments) {
        const note =
          `ring buffer full: ${st.lostMessages - seenLostMessages} messages and ${st.lostFragments - seenLostFragments} ` +
          `payload fragments dropped in the last second (${st.lostMessages} messages so far)`;
        seenLostMessages = st.lostMessages;
        seenLostFragments = st.lostFragments;
        log.info(note);
        out.note?.(`unixsock: ${note}`);
      }
    }
    if (showStats && Date.now() - lastStats >= 2000) {
      lastStats = Date.now();
      const st = cap.stats();
      stderrLine(`unixsock: ${cap.messages()} messages, ${st.capturedBytes} bytes, ${st.lostMessages} dropped`);
    }
  }, 100);
  const stopTimer = a.duration ? setTimeout(() => finish('duration'), a.duration * 1000) : undefined;
  const why = await done;
  clearInterval(timer);
  if (stopTimer) clearTimeout(stopTimer);
  log.info(`stopping: ${why}`);
  const summary = await cap.stop();
  // how close the ring came to full (bench's bulk rows print the worst run's)
  if (summary.ringPeak !== undefined && summary.ringSize) {
    log.info(`ring: at most ${(summary.ringPeak / 1048576).toFixed(1)} MiB of ${summary.ringSize / 1048576} MiB in use`);
  }
  if (!failure) {
    try {
      out.end(summary);
    } catch (e) {
      failure = e as Error;
    }
  }
  onStop(undefined);
  log.info(summaryLine(summary));
  if (!a.quiet && !extcap) stderrLine(summaryLine(summary));
  if (failure) throw failure;
  return 0;
}

function openOutput(target: string): { fd: number; what: string } {
  if (target === '-') return { fd: 1, what: 'stdout' };
  return { fd: openUserOutput(target, false, `cannot write "${target}"`), what: target };
}

export async function main(argv: string[]): Promise<number> {
  let fifoFd: number | undefined;
  try {
    // Wireshark's queries at its start and for the options dialog, answered
    // before the parser is built; any other shape goes to the parser below,
    // which decides the same way (extcapAnswer)
    const query = extcapQuery(argv);
    const quick = query && (await extcapAnswer(query, pickerValues));
    if (quick !== undefined) {
      process.stdout.write(quick + '\n');
      return 0;
    }
    const y = parser(argv);
    const a = y.parseSync();
    if (a.help) {
      process.stdout.write((await y.getHelp()) + '\n');
      return 0;
    }
    if (a.version) {
      process.stdout.write(`unixsock ${VERSION}\n`);
      return 0;
    }
    // Wireshark 4.6 may call this after killing a capture: nothing is left to clean up
    if (a['extcap-cleanup-postkill']) return 0;
    const answer = await extcapAnswer(
      {
        interfaces: !!a['extcap-interfaces'],
        dlts: !!a['extcap-dlts'],
        config: !!a['extcap-config'],
        iface: a['extcap-interface'],
        version: a['extcap-version'],
        reload: a['extcap-reload-option'],
      },
      pickerValues,
    );
    if (answer !== undefined) {
      process.stdout.write(answer + '\n');
      return 0;
    }
    const filterText = [a['extcap-capture-filter'] ?? '', ...a._.map(String)].join(' ').trim();
    if (a['extcap-capture-filter'] !== undefined && !a.capture) {
      // Wireshark's filter check: any output is the error shown, none means valid.
      try {
        toKernelFilter(parseFilter(a['extcap-capture-filter']), { syntaxOnly: true });
      } catch (e) {
        process.stdout.write((e as Error).message + '\n');
      }
      return 0;
    }
    // a capture from here on. The addon is loaded first: in an executable with
    // capabilities it clears the effective set as it loads, so that no path
    // given by the user is opened with a capability in effect.
    refuseDebugger();
    loadEngine();
    openLog(a['log-file'], !!a.debug);
    log.info(`unixsock ${VERSION} started: ${argv.join(' ')}`);
    const ws = wiresharkVersion(a['extcap-version']);
    if (ws) log.info(`called by Wireshark ${ws.text}`);
    const linktype = number(a.linktype, 'linktype', LINKTYPE_MIN, LINKTYPE_MAX) ?? DEFAULT_LINKTYPE;
    if (a.capture) {
      if (!a.fifo) throw new UsageError('--capture needs --fifo PATH');
      catchStops(); // a stop while waiting for Wireshark's reader ends the wait
      fifoFd = await openFifo(a.fifo, `cannot open fifo "${a.fifo}"`, () => stopRequested() !== undefined);
      if (fifoFd === undefined) {
        log.info(`stopping: ${stopRequested()} before Wireshark opened the fifo`);
        return 0;
      }
      const fd = fifoFd;
      return await capture(a, () => new PcapngSink(fd, 'fifo', linktype, filterText), filterText, true);
    }
    if (a.w !== undefined) {
      const { fd, what } = openOutput(a.w);
      try {
        return await capture(a, () => new PcapngSink(fd, what, linktype, filterText), filterText, false);
      } finally {
        if (fd !== 1) fs.closeSync(fd);
      }
    }
    return await capture(a, () => new TextSink(1, !!a.hex), filterText, false);
  } catch (e) {
    // the reader went away (Wireshark closed the fifo, `| head` exited): a normal end
    if (e instanceof WriteError && e.code === 'EPIPE') return 0;
    const err = e as Error & { exitCode?: number };
    const known = e instanceof UsageError || e instanceof CaptureError || e instanceof WriteError;
    const msg = e instanceof WriteError ? `${err.message}: the capture stops here` : known ? err.message : `internal error: ${err.message}`;
    log.error(msg);
    if (!known && log.isDebug()) log.error(err.stack ?? '');
    stderrLine(`unixsock: ${msg}`);
    return err.exitCode ?? 1;
  } finally {
    if (fifoFd !== undefined) {
      try {
        fs.closeSync(fifoFd);
      } catch {
        // already gone
      }
    }
    closeLog();
  }
}

if (require.main === module || process.env.UNIXSOCK_MAIN === '1' || isSea()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      stderrLine(`unixsock: internal error: ${(e as Error).message}`);
      process.exitCode = 1;
    },
  );
}

function isSea(): boolean {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- node:sea came in Node 20.12: older ones throw here
    return (require('node:sea') as typeof import('node:sea')).isSea();
  } catch {
    return false;
  }
}
