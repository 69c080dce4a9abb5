// End-to-end: unixsock installed into each Wireshark version (4.0 on this
// machine, 4.4 and 4.6 in Debian roots, test/helpers/wireshark.ts), the way a
// user installs it (scripts/install-extcap.sh), for root and for an ordinary
// user: where it lands is what that tshark says (`tshark -G folders`,
// `tshark -G plugins`), `tshark -D` lists it, the dissector decodes without
// -X, and `tshark -i unixsock` captures real traffic.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { encodeLinkHeader } from '../helpers/link-encode';
import { writePcapngFile } from '../helpers/pcapng-write';
import { CI, EXE, ROOT, SOCKGEN, exited, need, needBpf, records, sleep, tmpdir, waitForSocket } from '../helpers/harness';
import { message } from '../helpers/messages';
import { forEachWireshark, type ExecOptions, type Wireshark } from '../helpers/wireshark';

const INSTALL = path.join(ROOT, 'scripts/install-extcap.sh');

/** A home folder the given user owns, under the temporary folder every root sees. */
function home(t: TestContext, user: string): string {
  const h = tmpdir(t);
  if (user !== 'root') execFileSync('chown', [`${user}:`, h]);
  return h;
}

/** Where this Wireshark reads a user's extcaps (4.0 has no entry: <personal configuration>/extcap). */
function personalExtcap(folders: Map<string, string>): string {
  return folders.get('Personal Extcap path') ?? path.join(folders.get('Personal configuration')!, 'extcap');
}

function ok(ws: Wireshark, argv: string[], opts: ExecOptions): string {
  const r = ws.exec(argv, opts);
  assert.equal(r.status, 0, `${argv.join(' ')}: ${r.stderr}${r.error ?? ''}`);
  return r.stdout;
}

describe('unixsock in every Wireshark version', () => {
  it('install-extcap.sh, for root and for an ordinary user: tshark -D lists it, the dissector loads once, --uninstall removes both', async (t) => {
    if (!fs.existsSync(EXE)) throw new Error('extcap/unixsock is not built');
    if (!need(t, 'tshark', 'setpriv')) return;
    if (process.geteuid?.() !== 0) {
      if (CI) throw new Error('the install test runs as root (it also installs for nobody)');
      t.skip('not root');
      return;
    }
    const dir = tmpdir(t);
    const file = path.join(dir, 'one.pcapng');
    const m = message();
    writePcapngFile(file, 147, [Buffer.concat([encodeLinkHeader(m, 0, false), m.payload])], 'install test');
    await forEachWireshark(t, (ws) => {
      for (const user of ['root', 'nobody']) {
        const h = home(t, user);
        const globalLua = ws.folders().get('Global Lua Plugins')!;
        // inside a root, the global Lua folder is a fresh folder for this test (the cached root stays as it is)
        const globalCopy = tmpdir(t);
        const opts: ExecOptions = { user: user === 'root' ? undefined : user, home: h, binds: [[globalCopy, globalLua]] };
        const folders = ws.folders(opts);
        const out = ok(ws, ['bash', INSTALL, '--no-build'], opts);
        ok(ws, ['bash', INSTALL, '--no-build'], opts); // again: idempotent

        const exe = path.join(personalExtcap(folders), 'unixsock');
        assert.match(out, new RegExp(`^installed ${exe}$`, 'm'), `${user}: the extcap goes to the personal extcap folder`);
        assert.ok(fs.existsSync(exe), exe);
        const luaLine = /^installed (\S+\/unixsock\.lua)(.*)$/m.exec(out);
        assert.ok(luaLine, out);
        // the dissector is loaded, once, from where the script put it
        const plugins = ok(ws, ['tshark', '-G', 'plugins'], opts)
          .split('\n')
          .filter((l) => l.includes('unixsock.lua'));
        assert.deepEqual(
          plugins.map((l) => l.split('\t').at(-1)),
          [luaLine[1]],
          `${user}: tshark -G plugins`,
        );
        if (luaLine[1].startsWith(`${globalLua}/`)) {
          // only where root's Wireshark skips personal Lua plugins, and the script says so
          assert.equal(user, 'root');
          assert.match(luaLine[2], /global Lua plugin folder: this Wireshark, run as root, skips personal Lua plugins/);
        } else {
          assert.equal(luaLine[1], path.join(folders.get('Personal Lua Plugins')!, 'unixsock.lua'));
        }
        // decodes without -X lua_script, and lists the interface
        assert.equal(ok(ws, ['tshark', '-r', file, '-T', 'fields', '-e', 'unixsock.pid', '-e', 'unixsock.comm'], opts).trim(), '4242\tcurl');
        assert.match(ok(ws, ['tshark', '-D'], opts), /^\d+\. unixsock \(Unix sockets\)$/m);
        assert.match(ok(ws, ['tshark', '-i', 'unixsock', '-L'], opts), /USER0 \(Unix socket messages \(unixsock\)\)/);

        const un = ok(ws, ['bash', INSTALL, '--uninstall'], opts);
        assert.match(un, new RegExp(`^removed ${exe}$`, 'm'));
        assert.match(un, new RegExp(`^removed ${luaLine[1]}$`, 'm'));
        assert.ok(!fs.existsSync(exe));
        assert.doesNotMatch(ok(ws, ['tshark', '-D'], opts), /Unix sockets/);
        assert.equal(ok(ws, ['tshark', '-G', 'plugins'], opts).includes('unixsock.lua'), false);
      }
    });
  });

  it('tshark -i unixsock captures real traffic with -o extcap.unixsock.* options, decoded by the same tshark', async (t) => {
    if (!needBpf(t) || !need(t, 'tshark', 'socat')) return;
    const dir = tmpdir(t);
    const sock = path.join(dir, 'live.sock');
    const srv = spawn('socat', [`UNIX-LISTEN:${sock},fork`, 'SYSTEM:echo live-pong'], { stdio: 'ignore' });
    t.after(() => srv.kill());
    await waitForSocket(sock);
    await forEachWireshark(t, async (ws) => {
      // installed as root: on 4.4+ the dissector goes to the global Lua folder, a folder of this test's inside a root
      const opts: ExecOptions = { home: home(t, 'root'), binds: [[tmpdir(t), ws.folders().get('Global Lua Plugins')!]] };
      ok(ws, ['bash', INSTALL, '--no-build'], opts);
      const out = path.join(tmpdir(t), 'live.pcapng');
      const log = path.join(path.dirname(out), 'extcap.log');
      const opt = (k: string, v: string) => ['-o', `extcap.unixsock.${k}:${v}`];
      const ts = ws.spawn(['tshark', '-i', 'unixsock', '-a', 'duration:8', ...opt('path', sock), ...opt('ringsize', '16'), ...opt('logfile', log), '-w', out], {
        ...opts,
        home: opts.home!,
      });
      let err = '';
      ts.stderr!.on('data', (d) => (err += d));
      const done = exited(ts);
      // a message every 200 ms from the start: the capture must hold every one after its first
      const sent: string[] = [];
      let running = true;
      void done.then(() => (running = false));
      for (let i = 0; running && i < 60; i++) {
        const p = `live-ping-${i}`;
        execFileSync(SOCKGEN, ['connect', sock, p]);
        sent.push(p);
        await sleep(200);
      }
      assert.equal(await done, 0, err);
      const pings = records(out)
        .filter((r) => r.payload.toString().startsWith('live-ping-'))
        .map((r) => r.payload.toString());
      const extcapLog = () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '(no extcap log)');
      assert.ok(pings.length >= 5, `${pings.length} pings captured of ${sent.length}: ${err}\n${extcapLog()}`);
      const first = sent.indexOf(pings[0]);
      const last = sent.indexOf(pings.at(-1)!);
      assert.deepEqual(pings, sent.slice(first, last + 1), 'no message lost once the capture runs');
      // the installed dissector (no -X) reads what this version captured
      const comms = ok(ws, ['tshark', '-r', out, '-Y', `unixsock.peer.path == "${sock}"`, '-T', 'fields', '-e', 'unixsock.comm'], opts);
      assert.ok(comms.split('\n').filter((c) => c === 'sockgen').length >= pings.length, comms);
      ok(ws, ['bash', INSTALL, '--uninstall'], opts);
    });
  });
});
