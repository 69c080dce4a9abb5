// The extcap dialog refuses what the executable refuses: its patterns and
// selectors are checked here against the executable's own validators.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ringBytesFromMiB } from '../../src/capture';
import { CONFIG_ARGS, configArgs, configText, extcapAnswer, extcapQuery, takesEditSelector } from '../../src/extcap';
import { listenerLabel, parseProcNetUnix } from '../../src/sockets';
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
      assert.equal(
        re.test(p),
        accepts(() => toKernelFilter([{ kind: 'path', neg: false, value: p }])),
        JSON.stringify(p),
      );
    }
  });

  it('the command name pattern accepts exactly the names the filter accepts (ASCII)', () => {
    const re = pattern('comm');
    for (const c of ['a', 'dockerd', 'x'.repeat(15), 'x'.repeat(16), 'with space']) {
      assert.equal(
        re.test(c),
        accepts(() => toKernelFilter(parseFilter(`comm "${c}"`))),
        c,
      );
    }
  });

  it('the namespace patterns accept exactly the forms the pidns and netns filters take (files are checked at start)', () => {
    for (const [call, type, other] of [
      ['pidns', 'pid', 'net'],
      ['netns', 'net', 'pid'],
    ] as const) {
      const re = pattern(call);
      const samples = ['1', '4026531836', '4294967295', '0', '01', `${type}:[4026531836]`, `${other}:[4026531836]`, `${type}:[0]`, `${type}:4026531836`];
      samples.push('/proc/1/ns/' + type, '/run/netns/blue', 'blue', '', ' 1', '/'.padEnd(4096, 'x'), '/'.padEnd(4097, 'x'));
      for (const v of samples) {
        assert.equal(
          re.test(v),
          accepts(() => toKernelFilter([{ kind: call, neg: false, value: v }], { syntaxOnly: true })),
          `${call} ${JSON.stringify(v.slice(0, 40))}`,
        );
      }
      // the one gap, said in src/limits.ts: ten digits above 2^32 - 1
      assert.ok(re.test('4294967296') && !accepts(() => toKernelFilter([{ kind: call, neg: false, value: '4294967296' }])));
    }
  });

  it('the ring buffer selector offers exactly the sizes the executable takes', () => {
    const offered = (arg('ring-size').values ?? []).map((v) => Number(v.value));
    const taken = Array.from({ length: 2048 }, (_, i) => i).filter((n) => accepts(() => ringBytesFromMiB(n)));
    assert.deepEqual(offered, taken);
    assert.equal(arg('ring-size').type, 'selector');
    assert.ok(!accepts(() => ringBytesFromMiB(3)), '3 MiB, which the dialog once let through');
  });

  it("the process id range is the filter's", () => {
    const [, lo, hi] = /\{range=(\d+),(\d+)\}/.exec(arg('pid').extra ?? '')!.map(Number);
    assert.equal(lo, 0); // 0 is the dialog's "any process"
    assert.ok(accepts(() => toKernelFilter(parseFilter(`pid ${hi}`))));
    assert.ok(!accepts(() => toKernelFilter(parseFilter(`pid ${hi + 1}`))));
  });

  it('every value line can be ticked or chosen ({enabled=true})', () => {
    const values = configText()
      .split('\n')
      .filter((l) => l.startsWith('value '));
    assert.ok(values.length > 0);
    for (const v of values) assert.match(v, /\{enabled=true\}$/, v);
  });

  it("the fast path takes exactly the shapes of Wireshark's queries, nothing else", () => {
    const q = (...argv: string[]) => extcapQuery(argv);
    assert.deepEqual(q('--extcap-interfaces', '--extcap-version=4.6.1'), { interfaces: true, dlts: false, config: false, iface: undefined, version: '4.6.1' });
    assert.deepEqual(q('--extcap-dlts', '--extcap-interface', 'unixsock'), { interfaces: false, dlts: true, config: false, iface: 'unixsock' });
    assert.deepEqual(q('--extcap-interface=unixsock', '--extcap-config', '--extcap-version', '4.0'), {
      interfaces: false,
      dlts: false,
      config: true,
      iface: 'unixsock',
      version: '4.0',
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

  it('the socket path is an editable list of the listening sockets where Wireshark takes one (4.2+), else a second, plain list', async () => {
    const picks = [{ value: '/run/docker.sock', display: '/run/docker.sock (dockerd 811)' }];
    const q = { interfaces: false, dlts: false, config: true, iface: 'unixsock' };
    const v46 = (await extcapAnswer({ ...q, version: '4.6.1' }, () => Promise.resolve(picks)))!;
    assert.match(v46, /^arg \{number=0\}\{call=--path\}\{display=Socket path\}\{type=editselector\}.*\{reload=true\}/m);
    assert.match(v46, /^value \{arg=0\}\{value=\/run\/docker\.sock\}\{display=\/run\/docker\.sock \(dockerd 811\)\}\{default=false\}\{enabled=true\}$/m);
    assert.doesNotMatch(v46, /--socket/);
    for (const version of ['4.0', undefined]) {
      const v40 = (await extcapAnswer({ ...q, version }, () => Promise.resolve(picks)))!;
      assert.doesNotMatch(v40, /editselector/, '4.0 refuses the type');
      assert.match(v40, /^arg \{number=0\}\{call=--path\}.*\{type=string\}/m);
      assert.match(v40, /^arg \{number=1\}\{call=--socket\}.*\{type=selector\}.*\{reload=true\}/m);
      assert.match(v40, /^value \{arg=1\}\{value=\}\{display=\(any: see Socket path\)\}\{default=true\}/m);
      assert.match(v40, /^value \{arg=1\}\{value=\/run\/docker\.sock\}/m);
    }
    // the reload button: only the list, numbered as in the dialog
    assert.equal(
      await extcapAnswer({ ...q, version: '4.4.2', reload: 'path' }, () => Promise.resolve(picks)),
      'value {arg=0}{value=/run/docker.sock}{display=/run/docker.sock (dockerd 811)}{default=false}{enabled=true}',
    );
    await assert.rejects(
      extcapAnswer({ ...q, version: '4.4.2', reload: 'pid' }, () => Promise.resolve(picks)),
      /cannot be reloaded/,
    );
    assert.deepEqual([takesEditSelector('4.0.17'), takesEditSelector('4.2.0'), takesEditSelector('4.6'), takesEditSelector('x')], [false, true, true, false]);
    // the same validation as the text field
    assert.equal(
      configArgs(true)
        .find((a) => a.call === 'path')!
        .extra?.includes(arg('path').extra!.replace(/^.*(\{validation=)/, '$1')),
      true,
    );
  });

  it('lists listening stream and seqpacket sockets and bound datagram sockets from /proc/net/unix', () => {
    // lines as Linux 6.x prints them: Num RefCount Protocol Flags Type St Inode Path
    const text = [
      'Num       RefCount Protocol Flags    Type St Inode Path',
      '000000007a6f1759: 00000003 00000000 00000000 0001 03  1147', // connected, unnamed
      '0000000099e62dd4: 00000002 00000000 00010000 0001 01 1648954 /run/docker.sock', // listening stream
      '0000000011111111: 00000003 00000000 00000000 0001 03 1648955 /run/docker.sock', // an accepted connection
      '0000000022222222: 00000002 00000000 00000000 0002 01 2000 /run/systemd/notify', // bound dgram
      '0000000033333333: 00000002 00000000 00010000 0005 01 3000 @abstract name', // listening seqpacket, abstract, a space
      '0000000044444444: 00000002 00000000 00000000 0001 01 4000 /tmp/bound-not-listening', // bound stream, no listen()
      '0000000055555555: 00000002 00000000 00010000 0001 01 5000 /tmp/a}{value=evil', // would break the extcap line
    ].join('\n');
    const l = parseProcNetUnix(text);
    assert.deepEqual(
      l.map((x) => [x.path, x.type, x.inode]),
      [
        ['/run/docker.sock', 'stream', 1648954],
        ['/run/systemd/notify', 'dgram', 2000],
        ['@abstract name', 'seqpacket', 3000],
      ].sort((a, b) => (a[0] < b[0] ? -1 : 1)),
    );
    assert.equal(listenerLabel({ path: '/run/docker.sock', type: 'stream', inode: 1, pid: 811, comm: 'dockerd' }), '/run/docker.sock (dockerd 811)');
    assert.equal(
      listenerLabel({ path: '/srv/app.sock', type: 'stream', inode: 1, pid: 4242, comm: 'node', container: 'web-1' }),
      '/srv/app.sock (node 4242 [web-1])',
    );
    assert.equal(listenerLabel({ path: '@bus', type: 'dgram', inode: 1 }), '@bus (dgram)');
  });
});
