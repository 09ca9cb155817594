// Node.js `http` echo server for tests/support/real_servers.py:
//   node echo_node.js HOST PORT      (records to the file named by $ECHO_LOG)
// Framing from the first path segment: /len/ Content-Length, /chunked/ two chunks,
// /close/ no length + "Connection: close" (Transfer-Encoding and Content-Length removed,
// so node sends a close-delimited body and closes). Each request is recorded as the line
// "<METHOD> <X-Request-Id>" (one synchronous O_APPEND write) before the answer is sent.
'use strict';
const fs = require('fs');
const http = require('http');

const [host, port] = process.argv.slice(2);
const log = fs.openSync(process.env.ECHO_LOG, 'a');

const server = http.createServer((req, res) => {
  const id = req.headers['x-request-id'] ?? '-';
  req.on('data', () => {});
  req.on('end', () => {
    fs.writeSync(log, `${req.method} ${id}\n`);
    const first = req.url.split('/')[1];
    const framing = first === 'chunked' || first === 'close' ? first : 'len';
    res.statusCode = 200;
    res.setHeader('Server', `node/${process.version}`);
    res.setHeader('Content-Type', 'text/plain');
    res.setHeader('X-Request-Id', id);
    if (framing === 'len') {
      res.setHeader('Content-Length', Buffer.byteLength(`id=${id}\n`));
    } else if (framing === 'close') {
      res.setHeader('Connection', 'close');
      res.removeHeader('Content-Length');
      res.removeHeader('Transfer-Encoding');
    }
    if (req.method === 'HEAD') {
      res.end();
    } else if (framing === 'len') {
      res.end(`id=${id}\n`);
    } else {
      res.write('id=');
      res.end(`${id}\n`);
    }
  });
});
server.keepAliveTimeout = 75000;
server.headersTimeout = 76000;
server.listen(Number(port), host, () => console.log(`serving on ${host}:${port}`));
process.on('SIGTERM', () => process.exit(0));
