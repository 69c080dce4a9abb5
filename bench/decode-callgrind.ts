// Instructions per decoded record, counted by callgrind (independent of the
// machine's load, unlike bench/run.ts decode's wall time): tshark -r on the
// decode benchmark's traffic at two sizes, the difference divided by the
// records between them (start-up and the dissectors' registration cancel out).
//
//   node --import tsx bench/decode-callgrind.ts [--runs N] [LUA...]
//
// One run of a dissector varies by about ±3k instructions per record (Lua
// seeds its string hashes per run, and the garbage collector's steps fall
// differently): compare the medians of a few runs (--runs 3) before claiming
// a cut of that size.
//
// Each LUA (default wireshark/unixsock.lua) decodes the unixsock records;
// "TCP" is the same traffic as Ethernet/IPv4/TCP with the first LUA loaded,
// as bench/run.ts decode runs it; "no dissector" is the unixsock records with
// an empty script (tshark reading the file and the frame, the part no
// dissector can save). Needs valgrind and tshark on the PATH.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writePcapngFile } from '../test/helpers/pcapng-write';
import { decodeTraffic } from './decode-traffic';

const argv = process.argv.slice(2);
const runsAt = argv.indexOf('--runs');
const RUNS = runsAt >= 0 ? Number(argv.splice(runsAt, 2)[1]) : 1;
if (!(RUNS >= 1)) throw new Error('--runs takes a number of runs');
const luas = argv.map((f) => path.resolve(f));
if (!luas.length) luas.push(path.resolve(__dirname, '../wireshark/unixsock.lua'));
const SMALL = 2000; // request/response pairs: 4000 records
const LARGE = 4000;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'unixsock-callgrind-'));
try {
  const files = new Map<string, string>();
  for (const pairs of [SMALL, LARGE]) {
    const { unix, tcp } = decodeTraffic(pairs);
    files.set(`unix${pairs}`, path.join(tmp, `unix${pairs}.pcapng`));
    files.set(`tcp${pairs}`, path.join(tmp, `tcp${pairs}.pcapng`));
    writePcapngFile(files.get(`unix${pairs}`)!, 147, unix, 'unixsock bench');
    writePcapngFile(files.get(`tcp${pairs}`)!, 1, tcp, 'unixsock bench');
  }
  const empty = path.join(tmp, 'empty.lua');
  fs.writeFileSync(empty, '');
  const home = fs.mkdtempSync(path.join(tmp, 'home-'));
  const count = (lua: string, file: string): number => {
    const out = path.join(tmp, 'callgrind.out');
    const r = spawnSync('valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}`, 'tshark', '-r', file, '-X', `lua_script:${lua}`], {
      env: { ...process.env, HOME: home },
      encoding: 'utf8',
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const m = /Collected : (\d+)/.exec(r.stderr ?? '');
    if (r.status !== 0 || !m) throw new Error(`valgrind tshark -r ${file} failed: ${r.stderr?.slice(-500) ?? r.error}`);
    return Number(m[1]);
  };
  const once = (lua: string, kind: string) =>
    Math.round((count(lua, files.get(`${kind}${LARGE}`)!) - count(lua, files.get(`${kind}${SMALL}`)!)) / (2 * (LARGE - SMALL)));
  /** the median of RUNS runs, and their range when more than one */
  const perRecord = (lua: string, kind: string) => {
    const xs = Array.from({ length: RUNS }, () => once(lua, kind)).sort((a, b) => a - b);
    const m = xs[Math.floor(xs.length / 2)];
    return { m, text: RUNS > 1 ? `${m} (${xs[0]}-${xs[xs.length - 1]})` : `${m}` };
  };
  const tcpRuns = perRecord(luas[0], 'tcp');
  const tcp = tcpRuns.m;
  console.log(
    `tshark ${/\d+\.\d+\.\d+/.exec(spawnSync('tshark', ['--version'], { encoding: 'utf8' }).stdout)?.[0] ?? '?'}; instructions per record (callgrind, ${2 * SMALL} -> ${2 * LARGE} records, median of ${RUNS} run(s)); load-independent\n`,
  );
  console.log('| decoding | instructions per record | vs TCP |');
  console.log('|---|---|---|');
  console.log(`| Ethernet/IPv4/TCP | ${tcpRuns.text} | 1.00x |`);
  const none = perRecord(empty, 'unix');
  console.log(`| unixsock records, no dissector | ${none.text} | ${(none.m / tcp).toFixed(2)}x |`);
  for (const lua of luas) {
    const n = perRecord(lua, 'unix');
    console.log(`| ${path.relative(process.cwd(), lua)} | ${n.text} | ${(n.m / tcp).toFixed(2)}x |`);
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
