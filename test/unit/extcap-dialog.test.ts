// The extcap dialog refuses what the executable refuses: its patterns and
// selectors are checked here against the executable's own validators.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ringBytesFromMiB } from '../../src/capture';
import { CONFIG_ARGS, configText, extcapQuery } from '../../src/extcap';
import { parseFilter, toKernelFilter } from '../../src/filter';

const accepts = (f: () => unknown) => {
  try {
    f();
    return true;
  } catch {
    return false;
  }
};
const arg = (call: string) => CONFIG_ARGS.find((a) => a.call === call)!;
// read as Wireshark's extcap parser reads it: a value ends at a "}" followed by "{", the end or a space
const pattern = (call: string) => new RegExp(/\{validation=(.*?)\}(?=\{|$|\s)/.exec(arg(call).extra ?? '')![1], 'u');

describe('extcap dialog constraints', () => {
  it('the socket path pattern accepts exactly the paths the filter accepts', () => {
    const re = pattern('path');
    const samples = ['/run/docker.sock', '@bus', '@', '/tmp/*', '*', '**', 'a', 'with space', 'é'.repeat(53)];
    for (const n of [106, 107, 108]) samples.push('/'.padEnd(n, 'x'), '/'.padEnd(n, 'x') + '*', '@'.padEnd(n, 'y'));
    for (const p of samples) {
      assert.equal(re.test(p), accepts(() => toKernelFilter([{ kind: 'path', neg: false, value: p }])), JSON.stringify(p));
    }
  });

  it('the command name pattern accepts exactly the names the filter accepts (ASCII)', () => {
    const re = pattern('comm');
    for (const c of ['a', 'dockerd', 'x'.repeat(15), 'x'.repeat(16), 'with space']) {
      assert.equal(re.test(c), accepts(() => toKernelFilter(parseFilter(`comm "${c}"`))), c);
    }
  });

  it('the ring buffer selector offers exactly the sizes the executable takes', () => {
    const offered = (arg('ring-size').values ?? []).map((v) => Number(v.value));
    const taken = Array.from({ length: 2048 }, (_, i) => i).filter((n) => accepts(() => ringBytesFromMiB(n)));
    assert.deepEqual(offered, taken);
    assert.equal(arg('ring-size').type, 'selector');
    assert.ok(!accepts(() => ringBytesFromMiB(3)), '3 MiB, which the dialog once let through');
  });

  it('the process id range is the filter\'s', () => {
    const [, lo, hi] = /\{range=(\d+),(\d+)\}/.exec(arg('pid').extra ?? '')!.map(Number);
    assert.equal(lo, 0); // 0 is the dialog's "any process"
    assert.ok(accepts(() => toKernelFilter(parseFilter(`pid ${hi}`))));
    assert.ok(!accepts(() => toKernelFilter(parseFilter(`pid ${hi + 1}`))));
  });

  it('every value line can be ticked or chosen ({enabled=true})', () => {
    const values = configText().split('\n').filter((l) => l.startsWith('value '));
    assert.ok(values.length > 0);
    for (const v of values) assert.match(v, /\{enabled=true\}$/, v);
  });

  it('the fast path takes exactly the shapes of Wireshark\'s queries, nothing else', () => {
    const q = (...argv: string[]) => extcapQuery(argv);
    assert.deepEqual(q('--extcap-interfaces', '--extcap-version=4.6.1'), { interfaces: true, dlts: false, config: false, iface: undefined });
    assert.deepEqual(q('--extcap-dlts', '--extcap-interface', 'unixsock'), { interfaces: false, dlts: true, config: false, iface: 'unixsock' });
    assert.deepEqual(q('--extcap-interface=unixsock', '--extcap-config', '--extcap-version', '4.0'), {
      interfaces: false,
      dlts: false,
      config: true,
      iface: 'unixsock',
    });
    for (const argv of [
      [],
      ['--extcap-interface', 'unixsock'], // no query: a capture or a filter check
      ['--extcap-dlts', '--extcap-interface', 'eth0'], // the parser says which interface is unknown
      ['--extcap-dlts', '--extcap-interface'],
      ['--extcap-dlts', '--extcap-interface', 'unixsock', '--extcap-interface', 'unixsock'],
      ['--extcap-interfaces', '--extcap-interfaces'],
      ['--extcap-interfaces=true'],
      ['--extcap-interfaces', '--extcap-version'],
      ['--extcap-interfaces', '--extcap-version', '--extcap-dlts'],
      ['--extcap-interfaces', '--extcap-version=x'],
      ['--extcap-interfaces', '--help'],
      ['--extcap-interfaces', '-q'],
      ['--extcap-interfaces', 'path', '/run/x'],
      ['--extcap-config', '--extcap-interface', 'unixsock', '--capture'],
    ]) {
      assert.equal(q(...argv), undefined, argv.join(' '));
    }
  });
});

