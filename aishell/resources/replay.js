// The replay server of env population (see docs/store.md, "Install scripts that download").
//
// `aishell lock` recorded every file a package's install script downloaded (URL, size,
// hash); `aishell sync` checked each against its hash into the download cache. This
// serves them, by URL, as an HTTP proxy on the population container's loopback: the
// container has no other network. Plain HTTP arrives in absolute form (Node's http, curl,
// wget) or inside a CONNECT tunnel (Node's fetch); HTTPS in a tunnel is answered as the
// host it names, with a certificate from a CA made for this population run, which only
// the install scripts trust (aishell/store/tlsmint.py). A URL the lock does not record,
// or TLS to a host without a certificate, is refused with one line saying so.
//
// Usage: node replay.js FETCHES.json PORT_FILE
//   FETCHES = {"files": {URL: file path}, "tls": {host: [certificate path, key path]}}
"use strict";
const fs = require("fs");
const http = require("http");
const tls = require("tls");
const { Duplex, PassThrough } = require("stream");

const plan = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const table = plan.files;
const certs = {};
for (const [host, [cert, key]] of Object.entries(plan.tls)) {
  certs[host] = tls.createSecureContext({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) });
}

function refuse(res, what) {
  console.error(`aishell: ${what} was not recorded by \`aishell lock\`, and population has no ` +
                "network: lock again (it records what install scripts download), or set " +
                "allow-network-install = true for this harness");
  res.writeHead(404, { "Content-Type": "text/plain", Connection: "close" });
  res.end("not recorded by aishell lock\n");
}

const server = http.createServer((req, res) => {
  const scheme = req.socket.encrypted ? "https" : "http";
  const url = req.url.startsWith("/") ? `${scheme}://${req.headers.host}${req.url}` : req.url;
  const file = table[url];
  if (req.method !== "GET" || file === undefined) {
    refuse(res, `${req.method} ${url}`);
    return;
  }
  const size = fs.statSync(file).size;
  res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": size });
  fs.createReadStream(file).pipe(res);
});

server.on("connect", (req, socket, head) => {
  socket.write("HTTP/1.1 200 Connection established\r\n\r\n");
  const serve = (chunk) => {
    if (chunk[0] !== 0x16) {
      socket.pause();
      socket.unshift(chunk);
      server.emit("connection", socket); // plain HTTP inside the tunnel
      return;
    }
    const host = req.url.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
    if (certs[host] === undefined) {
      console.error(`aishell: HTTPS to ${req.url} was not recorded by \`aishell lock\`, and ` +
                    "population has no network");
      socket.destroy();
      return;
    }
    // TLS over a stream that starts with the bytes already read (TLSSocket on the raw
    // socket would read its handle directly and miss them).
    const inbound = new PassThrough();
    inbound.write(chunk);
    socket.pipe(inbound);
    const duplex = Duplex.from({ readable: inbound, writable: socket });
    const secure = new tls.TLSSocket(duplex, { isServer: true, secureContext: certs[host] });
    server.emit("connection", secure); // HTTPS, answered as the host it asked for
  };
  if (head && head.length) serve(head);
  else socket.once("data", serve);
});

server.listen(0, "127.0.0.1", () => {
  const tmp = `${process.argv[3]}.tmp`;
  fs.writeFileSync(tmp, String(server.address().port));
  fs.renameSync(tmp, process.argv[3]);
});
