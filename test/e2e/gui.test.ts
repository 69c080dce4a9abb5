// End-to-end through Wireshark's GUI (wireshark-qt under Xvfb), driven with
// xdotool as a user drives it: the interface's options dialog, a live
// capture, then Follow TCP Stream, Follow HTTP Stream and Conversation
// Filter from the packet list's context menu. What the dialogs show is read
// back through the GUI itself (the Follow window's "Save as…"), and the
// conversation filter through the display filter Wireshark records.
//
// Positions inside windows are those of Wireshark 4.0 (Debian 12) at the
// fixed window size below; every step waits for the window it needs by name
// and fails with a screenshot (build/gui-failure.png) when it does not come.
//
// UNIXSOCK_SCREENSHOTS=DIR also saves the pictures of docs/ there
// (scripts/screenshots.sh).
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { LUA, ROOT, need, needBpf, sleep, tmpdir, waitForSocket } from '../helpers/harness';
import { XSession } from '../helpers/xgui';

const SHOTS = process.env.UNIXSOCK_SCREENSHOTS;

function processes(): { pid: number; argv: string[] }[] {
  const out = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      out.push({ pid: Number(pid), argv: fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The running extcap started by this test's Wireshark (its path is under the test's HOME). */
function extcapArgs(exe: string): string[] | undefined {
  return processes().find((p) => p.argv[0] === exe && p.argv.includes('--capture'))?.argv;
}

/**
 * Frames of a capture that match a display filter, decoded with our dissector (the file may still
 * be growing); `home` must hold no installed copy of the dissector.
 */
function matching(file: string, filter: string, home: string, fields = ['frame.number']): string[] {
  const r = spawnSync('tshark', ['-X', `lua_script:${LUA}`, '-r', file, '-Y', filter, '-T', 'fields', ...fields.flatMap((f) => ['-e', f])], {
    encoding: 'utf8',
    env: { ...process.env, HOME: home },
  });
  return r.stdout.split('\n').filter(Boolean);
}

describe('Wireshark GUI, as a user drives it', () => {
  it('options dialog (a socket type ticked, a path typed), live capture, Follow TCP/HTTP Stream and Conversation Filter from the context menu', async (t) => {
    if (!needBpf(t) || !need(t, 'wireshark', 'Xvfb', 'xdotool', 'import', 'curl', 'tshark')) return;
    const dir = tmpdir(t);
    const home = path.join(dir, 'home');
    const tmp = path.join(dir, 'tmp'); // Wireshark's own capture file lands here
    const run = path.join(dir, 'run');
    for (const d of [home, tmp, run]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, TMPDIR: tmp, XDG_RUNTIME_DIR: run, XDG_CONFIG_HOME: path.join(home, '.config') };
    delete env.WIRESHARK_CONFIG_DIR;
    fs.mkdirSync(path.join(ROOT, 'build'), { recursive: true });
    const x = new XSession(env, path.join(ROOT, 'build', 'gui-failure.png'));

    // unixsock installed for this HOME as the README says, with its profile
    execFileSync('bash', [path.join(ROOT, 'scripts/install-extcap.sh'), '--no-build'], { env, stdio: 'pipe' });
    const conf = path.join(home, '.config/wireshark');
    const exe = path.join(conf, 'extcap/unixsock');
    const profile = path.join(conf, 'profiles/unixsock');
    assert.ok(fs.existsSync(path.join(profile, 'preferences')), 'the install script installs the profile "unixsock"');
    // test settings added to the profile: only "Unix sockets" in the interface list (its row is then
    // the first), no "save before quitting?" question, the extcap's log (to know when it has attached),
    // and a fixed main window (no window manager places it)
    const others = execFileSync('tshark', ['-D'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .map((l) => /^\d+\. (\S+)/.exec(l)?.[1])
      .filter((n): n is string => !!n && n !== 'unixsock');
    const log = path.join(dir, 'extcap.log');
    fs.appendFileSync(
      path.join(profile, 'preferences'),
      `\ncapture.devices_hide: ${others.join(',')}\ngui.ask_unsaved: FALSE\nextcap.unixsock.logfile: ${log}\n`,
    );
    fs.writeFileSync(
      path.join(profile, 'recent'),
      'gui.geometry_main_x: 0\ngui.geometry_main_y: 0\ngui.geometry_main_width: 1380\ngui.geometry_main_height: 980\n' +
        'column.width: %m, 50, %t, 110, %Cus:unixsock.from, 110, %Cus:unixsock.to, 110, %Cus:unixsock.path, 250, %p, 70, %L, 60, %i, 600\n',
    );

    const tsharkHome = path.join(dir, 'tshark-home'); // tshark beside the test's HOME, where unixsock.lua is installed
    fs.mkdirSync(tsharkHome);
    const sock = path.join(dir, 'api.sock');
    const server = spawn(process.execPath, [path.join(ROOT, 'test/helpers/http-server.js'), sock], { stdio: 'ignore' });
    t.after(() => server.kill());
    await waitForSocket(sock);

    await x.start(t);
    t.after(() => x.stop());
    const ws = spawn('wireshark', ['-C', 'unixsock'], { env: x.env, stdio: ['ignore', 'ignore', 'pipe'] });
    let wsErr = '';
    ws.stderr.on('data', (d) => (wsErr += d));
    t.after(async () => {
      // a failed run must not leave a capture behind: Wireshark stops its extcap and dumpcap
      // on SIGTERM; whatever still names this test's folder after that is killed
      if (ws.exitCode === null) {
        ws.kill('SIGTERM');
        const end = Date.now() + 10000;
        while (ws.exitCode === null && ws.signalCode === null && Date.now() < end) await sleep(100);
      }
      for (const p of processes().filter((q) => q.argv.some((a) => a.includes(dir)))) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // ended meanwhile
        }
      }
    });
    const main = await x.until('the main window', () => {
      if (ws.exitCode !== null) throw new Error(`wireshark exited (${ws.exitCode}): ${wsErr}`);
      return x.visibleWindows().find((w) => /The Wireshark Network Analyzer/.test(x.windowName(w)));
    });

    // 1. the gear of "Unix sockets" opens its options (the list fills once the extcaps answered)
    const options = await x.until('the options dialog of Unix sockets', () => {
      x.click(main, 179, 237);
      return x.visibleWindows().find((w) => /Interface Options: Unix sockets/.test(x.windowName(w)));
    });
    // (the Filter tab's rows: Socket path, Listening socket, Socket file, Process ID, Command name, Container, Socket types)
    x.click(options, 166, 243); // Socket types: tick "Stream (SOCK_STREAM)"
    x.click(options, 340, 61); // Socket path
    x.type(options, sock);
    if (SHOTS) x.screenshot(path.join(SHOTS, 'wireshark-options.png'));
    x.click(options, 376, 403); // Save
    await x.until('the options dialog to close', () => !x.visibleWindows().includes(options));
    const saved = fs.readFileSync(path.join(profile, 'preferences'), 'utf8');
    assert.match(saved, /^extcap\.unixsock\.types: stream$/m, 'the ticked box was saved');
    if (SHOTS) x.screenshot(path.join(SHOTS, 'wireshark-interfaces.png'));

    // 2. a double click on the interface starts the capture with what the dialog said
    x.click(main, 400, 237, 1, 2);
    const argv = await x.until('Wireshark to start unixsock', () => extcapArgs(exe));
    const arg = (name: string) => argv[argv.indexOf(name) + 1];
    assert.equal(arg('--types'), 'stream');
    assert.equal(arg('--path'), sock);
    await x.until('the probes to attach', () => fs.existsSync(log) && /attached/.test(fs.readFileSync(log, 'utf8')));
    // the capture runs once a request shows up in Wireshark's own capture file
    const capFile = () => fs.readdirSync(tmp).find((f) => f.startsWith('wireshark_') && f.endsWith('.pcapng'));
    let warm = 0;
    await x.until("a first request in Wireshark's capture file", () => {
      execFileSync('curl', ['-s', '-o', '/dev/null', '--unix-socket', sock, `http://unixsock/warm-up-${warm++}`]);
      const f = capFile();
      return f && matching(path.join(tmp, f), 'http.request', tsharkHome).length > 0;
    });
    const uri = `/gui-${process.pid}`;
    assert.equal(execFileSync('curl', ['-s', '--unix-socket', sock, `http://unixsock${uri}`], { encoding: 'utf8' }), `hello ${uri}\n`);
    const capture = path.join(tmp, capFile()!);
    await x.until(
      'the request and its response in the capture',
      () => matching(capture, `http.request.uri == "${uri}" || http.response_for.uri contains "${uri}"`, tsharkHome).length === 2,
    );

    // 3. stop (the toolbar's red square): the extcap is told to end
    x.click(main, 52, 40);
    await x.until('unixsock to end', () => !extcapArgs(exe));
    const kept = path.join(dir, 'capture.pcapng');
    fs.copyFileSync(capture, kept); // Wireshark deletes its temporary file on quitting

    // 4. the request, by a display filter typed into the filter bar, then selected
    x.click(main, 300, 75);
    x.type(main, `http.request.uri == "${uri}"`);
    x.key(main, 'Return');
    x.click(main, 300, 120);

    // 5. Follow > TCP Stream and Follow > HTTP Stream from the packet's context menu
    const follow = async (item: number, title: RegExp, out: string): Promise<string> => {
      let before = x.visibleWindows();
      x.click(main, 300, 120, 3);
      const menu = await x.newWindow(before, 'the context menu');
      before = x.visibleWindows();
      x.click(menu, 60, 291); // Follow ▸
      const sub = await x.newWindow(before, 'the Follow submenu');
      x.click(sub, 60, 16 + 25 * item);
      const dlg = await x.window(title);
      const g = x.geometry(dlg);
      if (SHOTS && item === 0) x.screenshot(path.join(SHOTS, 'wireshark-follow.png'));
      x.click(dlg, g.w - 317, g.h - 24); // Save as…
      const save = await x.window(/Save Stream Content As/);
      x.type(save, out);
      x.key(save, 'Return');
      await x.until(`${out} to be written`, () => fs.existsSync(out) && fs.statSync(out).size > 0);
      x.click(dlg, g.w - 138, g.h - 24); // Close
      await x.until('the Follow window to close', () => !x.visibleWindows().includes(dlg));
      return fs.readFileSync(out, 'utf8');
    };
    const tcp = await follow(0, /Follow TCP Stream \(tcp\.stream eq \d+\)/, path.join(dir, 'follow-tcp.txt'));
    assert.match(tcp, new RegExp(`^GET ${uri} HTTP/1\\.1\\r?\\n`), tcp);
    assert.match(tcp, /HTTP\/1\.1 200 OK/);
    assert.match(tcp, new RegExp(`hello ${uri}`));
    const http = await follow(4, /Follow HTTP Stream/, path.join(dir, 'follow-http.txt'));
    assert.match(http, new RegExp(`GET ${uri} HTTP/1\\.1`), http);
    assert.match(http, new RegExp(`hello ${uri}`));

    // 6. Conversation Filter > TCP: Wireshark applies it as the display filter
    let before = x.visibleWindows();
    x.click(main, 300, 120, 3);
    const menu = await x.newWindow(before, 'the context menu');
    before = x.visibleWindows();
    x.click(menu, 60, 215); // Conversation Filter ▸
    const sub = await x.newWindow(before, 'the Conversation Filter submenu');
    x.click(sub, 40, 12 + 25 * 9); // TCP
    await x.until('the submenu to close', () => !x.visibleWindows().includes(sub));
    if (SHOTS) {
      x.click(main, 300, 120);
      x.click(main, 11, 552); // expand "Unix Socket Message"
      await sleep(500); // let it draw (pictures only: nothing is asserted on them)
      x.screenshot(path.join(SHOTS, 'wireshark-http.png'));
    }

    // 7. quit (Ctrl+Q): Wireshark records the display filters it applied
    x.key(main, 'ctrl+q');
    await x.until('Wireshark to quit', () => ws.exitCode !== null);
    const recent = fs.readFileSync(path.join(conf, 'recent_common'), 'utf8');
    const conv = /^recent\.display_filter: (\(ipv6\.addr eq .*tcp\.port.*)$/m.exec(recent)?.[1];
    assert.ok(conv, `a conversation filter was applied:\n${recent}`);
    // it selects exactly this connection: the request and its response
    const inConv = matching(kept, conv, tsharkHome);
    const listing = () =>
      matching(kept, 'frame', tsharkHome, ['frame.number', 'tcp.stream', 'tcp.srcport', 'tcp.dstport', 'http.request.uri', 'http.response_for.uri']).join('\n');
    assert.equal(inConv.length, 2, `${conv} matches the request and the response; the capture:\n${listing()}\n${recent}`);
    assert.deepEqual(inConv, matching(kept, `http.request.uri == "${uri}" || http.response_for.uri contains "${uri}"`, tsharkHome));
    assert.doesNotMatch(wsErr, /Lua|lua:/, wsErr);
  });
});
