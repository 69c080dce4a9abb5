// bpf/unixsock.h is the one source of the record layouts and their
// vocabulary: the committed TypeScript module and the dissector's constants
// block must be what scripts/gen-vocab.mjs makes of it today, and the offsets
// it computed must be the ones the addon's compiler laid out.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import * as vocab from '../../src/generated/vocab';
import { loadNative } from '../../src/native';
import { ROOT, tmpdir } from '../helpers/harness';

const GEN = path.join(ROOT, 'scripts/gen-vocab.mjs');

function check(root: string) {
  return spawnSync(process.execPath, [GEN, '--check', '--root', root], { encoding: 'utf8' });
}

/** A copy of what the generator reads and writes, to tamper with. */
function copyTree(dir: string): void {
  for (const f of ['bpf/unixsock.h', 'src/generated/vocab.ts', 'wireshark/unixsock.lua']) {
    fs.mkdirSync(path.join(dir, path.dirname(f)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
  }
}

describe('generated vocabulary', () => {
  it('src/generated/vocab.ts and the Lua constants block are what bpf/unixsock.h says', () => {
    const r = check(ROOT);
    assert.equal(r.status, 0, r.stderr);
  });

  it('the check fails on a hand edit of the Lua block and on a header change not regenerated', (t) => {
    const dir = tmpdir(t);
    copyTree(dir);
    const lua = path.join(dir, 'wireshark/unixsock.lua');
    const text = fs.readFileSync(lua, 'utf8');
    assert.match(text, /\n {2}MORE = 0x0040,\n/);
    fs.writeFileSync(lua, text.replace(/\n {2}MORE = 0x0040,\n/, '\n  MORE = 0x0023,\n'));
    let r = check(dir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /wireshark\/unixsock\.lua differ/);

    copyTree(dir);
    const h = path.join(dir, 'bpf/unixsock.h');
    fs.writeFileSync(h, fs.readFileSync(h, 'utf8').replace(/\t__u32 reserved2;\n/, '\t__u32 container;\n'));
    r = check(dir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /src\/generated\/vocab\.ts and wireshark\/unixsock\.lua differ/);
  });

  it("the offsets and sizes are the addon compiler's (offsetof, sizeof)", () => {
    const layout = loadNative().layout();
    // every struct of the header: the exports shaped { size, off, len }
    const generated = Object.fromEntries(Object.entries(vocab).filter(([, v]) => typeof v === 'object' && 'off' in v && 'len' in v));
    assert.deepEqual(Object.keys(layout).sort(), ['DATA', 'FILTER', 'LINK_HEADER', 'MSG', 'STAT_LINE']);
    assert.deepEqual(Object.keys(generated).sort(), Object.keys(layout).sort());
    for (const [name, s] of Object.entries(generated)) assert.deepEqual(layout[name], s, name);
    assert.equal(vocab.MSG.size, vocab.MSG_SIZE);
    assert.equal(vocab.DATA.size, vocab.DATA_HDR_SIZE);
  });

  it('names strategies and socket types as the CLI and the dissector do', () => {
    assert.deepEqual(Object.values(vocab.STRATEGY_NAMES), ['fentry', 'kprobe', 'sock_send_length', 'syscalls']);
    assert.deepEqual(vocab.SOCK_TYPE_NAMES, { 1: 'stream', 2: 'dgram', 5: 'seqpacket' });
  });
});
