// The runtime API client treats every reply as hostile: the capture that asks
// runs with privileges, and whatever listens on the socket answers. These
// tests serve bad replies from a real HTTP server on a Unix socket.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { ContainerNames, getJson, namesFromList, trustedSocket } from '../../src/docker';

const ID = 'a3f1c2d4e5b60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a';

async function serve(t: TestContext, handler: http.RequestListener): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unixsock-docker-'));
  const sock = path.join(dir, 'api.sock');
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(sock, r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return sock;
}

describe('container names from the runtime API', () => {
  it('keeps only well-formed ids and names from a list reply', () => {
    const names = namesFromList([
      { Id: ID, Names: ['/web-1'] },
      { Id: 'b'.repeat(64), Names: ['/other/alias', '/db'] }, // a link alias first: the plain name wins
      { Id: 'short', Names: ['/x'] },
      { Id: 'c'.repeat(64), Names: ['/bad name with spaces', '/\u001b[31mred'] },
      { Id: 'd'.repeat(64), Names: '/not-a-list' },
      { Id: 'e'.repeat(64), Names: ['/' + 'n'.repeat(200)] },
      null,
      'text',
    ]);
    assert.deepEqual(
      [...names],
      [
        [ID, 'web-1'],
        ['b'.repeat(64), 'db'],
      ],
    );
    assert.equal(namesFromList({ message: 'not a list' }).size, 0);
  });

  it('gives up on replies that are too large, too slow, not JSON or not 200', async (t) => {
    const sock = await serve(t, (req, res) => {
      if (req.url === '/big') {
        res.writeHead(200);
        res.end('['.padEnd(5000, ' ') + ']');
      } else if (req.url === '/slow') {
        res.writeHead(200);
        res.write('['); // and never more
      } else if (req.url === '/text') {
        res.end('hello');
      } else if (req.url === '/500') {
        res.writeHead(500);
        res.end('[]');
      } else {
        res.end(JSON.stringify([{ Id: ID, Names: ['/web-1'] }]));
      }
    });
    await assert.rejects(getJson(sock, '/big', 2000, 1000), /larger than 1000 bytes/);
    await assert.rejects(getJson(sock, '/slow', 300), /no reply within 300 ms/);
    await assert.rejects(getJson(sock, '/text'), /not JSON/);
    await assert.rejects(getJson(sock, '/500'), /HTTP 500/);
    assert.deepEqual(await getJson(sock, '/containers/json?all=1'), [{ Id: ID, Names: ['/web-1'] }]);
    // the cache, filled by one request; its lookups by name and by id prefix
    const names = new ContainerNames([sock]);
    await names.refresh();
    assert.equal(names.name(ID), 'web-1');
    assert.deepEqual(names.find('web-1'), [ID]);
    assert.deepEqual(names.find(ID.slice(0, 6)), [ID]);
    assert.deepEqual(names.find('nothing'), []);
  });

  it('asks every runtime at once: one that never answers does not hold back the others', async (t) => {
    // the first socket accepts and never answers; the second must be asked
    // while the first request is still open, and its names kept
    let firstOpen = false;
    let secondAskedWhileFirstOpen: boolean | undefined;
    const mute = await serve(t, (req) => {
      firstOpen = true;
      req.on('close', () => (firstOpen = false));
    });
    const live = await serve(t, (_req, res) => {
      // the two requests may arrive in either order: give the first one time to arrive
      const asked = Date.now();
      const check = () => {
        if (!firstOpen && Date.now() - asked < 400) return void setTimeout(check, 5);
        secondAskedWhileFirstOpen = firstOpen;
        res.end(JSON.stringify([{ Id: ID, Names: ['/web-1'] }]));
      };
      check();
    });
    const names = new ContainerNames([mute, live], 500);
    await names.refresh();
    assert.equal(secondAskedWhileFirstOpen, true);
    assert.equal(names.name(ID), 'web-1');
    assert.match(names.lastError ?? '', /no reply within 500 ms/);
  });

  it('asks only a socket owned by root or by the caller, never a plain file', async (t) => {
    const sock = await serve(t, (_req, res) => res.end('[]'));
    assert.equal(trustedSocket(sock), true); // made by this process's user
    fs.chownSync(sock, 65534, 65534); // nobody's
    assert.equal(trustedSocket(sock), process.getuid?.() === 65534);
    const file = path.join(path.dirname(sock), 'plain');
    fs.writeFileSync(file, '');
    assert.equal(trustedSocket(file), false);
    assert.equal(trustedSocket(path.join(path.dirname(sock), 'missing')), false);
    // an untrusted socket is not asked: no names, no error
    const names = new ContainerNames([sock]);
    await names.refresh();
    assert.equal(names.lastError, undefined);
  });
});
