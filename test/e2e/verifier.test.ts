// The running kernel's verifier on every program of the BPF object the build
// made (whatever clang compiled it), each loaded alone, with every filter off
// and on: none may be refused, and the verifier's own figures (instructions
// processed against its limit of 1,000,000, states, peak states) are printed
// per program so that the headroom is visible in every test run.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { ROOT, needBpf } from '../helpers/harness';

const TOOL = path.join(ROOT, 'build', 'verifier-stats');
const OBJ = path.join(ROOT, 'build', 'unixsock.bpf.o');

describe('verifier', () => {
  it('loads every program with filters off and on, and prints the verifier figures', (t) => {
    if (!needBpf(t)) return;
    assert.ok(fs.existsSync(TOOL) && fs.existsSync(OBJ), 'build/verifier-stats and build/unixsock.bpf.o are built by make');
    const clang = spawnSync('clang', ['--version'], { encoding: 'utf8' }).stdout?.split('\n')[0] ?? 'clang ?';
    const r = spawnSync(TOOL, [OBJ], { encoding: 'utf8', timeout: 300000 });
    const rows = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split('\t'));
    const table = [
      `verifier figures (${clang}, kernel ${fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}):`,
      'program              setting  result       insns  states  peak  max/insn',
    ];
    for (const [prog, setting, verdict, insns, total, peak, perInsn, reason] of rows)
      table.push(
        `${prog.padEnd(20)} ${setting.padEnd(8)} ${verdict.padEnd(11)} ${insns.padStart(6)} ${total.padStart(7)} ${peak.padStart(5)} ${perInsn.padStart(9)}${reason ? '  ' + reason : ''}`,
      );
    console.log(table.join('\n'));
    const refused = rows.filter((c) => c[2] === 'refused');
    assert.deepEqual(
      refused.map((c) => `${c[0]} (${c[1]}): ${c[7]}`),
      [],
      'no program is refused',
    );
    assert.equal(r.status, 0, r.stderr);
    // the send path of this kernel's strategy must have been verified, not skipped
    const loaded = rows.filter((c) => c[2] === 'ok');
    assert.ok(
      loaded.some((c) => Number(c[3]) > 1000),
      'at least one send program was verified',
    );
    for (const c of loaded) assert.ok(Number(c[3]) < 1_000_000, `${c[0]}: under the verifier's instruction limit`);
  });
});
