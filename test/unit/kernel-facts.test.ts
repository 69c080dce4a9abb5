// The strategy table the tests read (test/kernels/strategies.json) agrees with
// what users and the other stages are told, and the prediction rule picks as
// the README documents: the first allowed strategy in the table's order.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { STRATEGIES as CLI_STRATEGIES } from '../../src/capture';
import { ROOT } from '../helpers/harness';
import { FACTS, HOOKS, RECORD_SYSCALLS, STRATEGIES, STRATEGY_NUMBER, predict, type KernelReading } from '../helpers/kernel';

/** A kfeatures reading in which the hooks of the given kinds fail. */
function reading(failing: string[]): KernelReading {
  const hooks = Object.fromEntries(HOOKS.map((h) => [h, failing.some((k) => h.startsWith(`${k}:`)) ? { ok: false, why: 'test' } : { ok: true }]));
  return {
    release: 'x',
    machine: 'x86_64',
    btf: true,
    tracefs: '/t',
    syscalls: { write: 1, writev: 20, sendto: 44, sendmsg: 46, sendmmsg: 307, sendfile: 40 },
    hooks,
  };
}

describe('kernel facts', () => {
  it("the records' system call numbers (bpf/syscalls.h REC_*) are the ones docs/link-header.md and the dissector name", () => {
    const src = fs.readFileSync(path.join(ROOT, 'bpf', 'syscalls.h'), 'utf8');
    const rec = [...src.matchAll(/^#define REC_(\w+) (\d+)$/gm)].map((m) => [m[1], Number(m[2])] as const);
    assert.ok(rec.length >= 6);
    const lua = fs.readFileSync(path.join(ROOT, 'wireshark', 'unixsock.lua'), 'utf8');
    const table = /local SYSCALLS = \{([^}]*)\}/.exec(lua)?.[1] ?? '';
    const named = Object.fromEntries([...table.matchAll(/\[(\d+)\] = "(\w+)"/g)].map((m) => [Number(m[1]), m[2]]));
    for (const [name, n] of rec) assert.equal(named[n], name, `wireshark/unixsock.lua names ${n} ${name}`);
    const doc = fs.readFileSync(path.join(ROOT, 'docs', 'link-header.md'), 'utf8');
    const row = doc.split('\n').find((l) => l.includes('`syscall`')) ?? '';
    for (const [name, n] of Object.entries(RECORD_SYSCALLS)) assert.match(row, new RegExp(`\\b${n} ${name}\\b`), `docs/link-header.md: ${n} ${name}`);
  });

  it('strategies.json lists the strategies in the README order, with the numbers of bpf/unixsock.h and the CLI names', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const table = readme.slice(readme.indexOf('| attach strategy |'));
    const documented = [...table.slice(0, table.indexOf('\n\n')).matchAll(/^\| `(\w+)`/gm)].map((m) => m[1]);
    assert.deepEqual(STRATEGIES, documented);
    const header = fs.readFileSync(path.join(ROOT, 'bpf', 'unixsock.h'), 'utf8');
    for (const s of STRATEGIES) {
      const m = new RegExp(`UNIXSOCK_S_${s.toUpperCase()} = (\\d+)`).exec(header);
      assert.equal(Number(m?.[1]), STRATEGY_NUMBER[s], s);
    }
    assert.deepEqual(
      CLI_STRATEGIES.filter((s) => s !== 'auto'),
      STRATEGIES,
    );
    for (const s of STRATEGIES) for (const h of FACTS.strategies[s].hooks) assert.ok(FACTS.refusal[h.slice(0, h.indexOf(':'))], `a refusal pattern for ${h}`);
  });

  it('auto is the first strategy whose every hook works; a strategy with one failing hook is refused', () => {
    // a kernel without trampolines and kprobes (a locked-down 6.3+)
    let p = predict(reading(['fexit', 'kprobe', 'kretprobe']));
    assert.deepEqual(p.allowed, { fentry: false, kprobe: false, sock_send_length: true, syscalls: true });
    assert.equal(p.auto, 'sock_send_length');
    assert.equal(p.missing.fentry?.hook, 'fexit:unix_stream_sendmsg');
    // Debian 12's 6.1: no sock_send_length tracepoint
    p = predict(reading(['tp_btf']));
    assert.equal(p.auto, 'fentry');
    assert.equal(p.allowed.sock_send_length, false);
    // kretprobes alone missing take kprobe out
    p = predict(reading(['fexit', 'kretprobe']));
    assert.equal(p.auto, 'sock_send_length');
    // tracefs taken away: the syscall strategy goes, the others stay
    p = predict(reading([]), { tracefs: false });
    assert.equal(p.allowed.syscalls, false);
    assert.equal(p.auto, 'fentry');
    // nothing works: auto must be refused too
    assert.equal(predict(reading(['fexit', 'kprobe', 'tp_btf', 'tracepoint'])).auto, undefined);
    assert.equal(predict({ ...reading([]), btf: false }).auto, undefined, 'no BTF: nothing');
  });
});
