// HTTP/2 (gRPC-style: POST with application/grpc, trailers) on a Unix socket.
//   node h2.js server SOCK | node h2.js client SOCK
const http2 = require('node:http2');
const net = require('node:net');
const fs = require('node:fs');
const [mode, sock] = process.argv.slice(2);
if (mode === 'server') {
  try {
    fs.unlinkSync(sock);
  } catch {
    // not there yet
  }
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.concat([Buffer.from([0, 0, 0, 0, 5]), Buffer.from('pong!')]));
    });
    void headers;
  });
  server.listen(sock);
  process.on('SIGTERM', () => process.exit(0));
} else {
  const client = http2.connect('http://unixsock', { createConnection: () => net.connect(sock) });
  const req = client.request({ ':method': 'POST', ':path': '/unixsock.Test/Ping', 'content-type': 'application/grpc' });
  req.on('response', (h) => process.stdout.write(`status ${h[':status']}\n`));
  req.on('data', () => {});
  req.on('end', () => client.close());
  req.end(Buffer.concat([Buffer.from([0, 0, 0, 0, 5]), Buffer.from('ping!')]));
}
