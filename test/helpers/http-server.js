// HTTP/1.1 server on a Unix socket for the tests: /big sends the file given
// as argv[3] in 64 KiB writes; /chunked sends a chunked body; anything else
// answers "hello <url>" (keep-alive).
const http = require('node:http');
const fs = require('node:fs');
const [sock, bodyFile] = process.argv.slice(2);
try {
  fs.unlinkSync(sock);
} catch {
  // not there yet
}
const big = bodyFile ? fs.readFileSync(bodyFile) : Buffer.alloc(0);
http
  .createServer((req, res) => {
    if (req.url === '/big') {
      res.setHeader('content-length', big.length);
      let o = 0;
      const next = () => {
        while (o < big.length) {
          const part = big.subarray(o, o + 65536);
          o += part.length;
          if (!res.write(part)) return res.once('drain', next);
        }
        res.end();
      };
      next();
    } else if (req.url === '/chunked') {
      res.setHeader('content-type', 'text/plain');
      for (let i = 0; i < 10; i++) res.write(`chunk-${i};`.repeat(100));
      res.end();
    } else {
      res.end(`hello ${req.url}\n`);
    }
  })
  .listen(sock);
process.on('SIGTERM', () => process.exit(0));
