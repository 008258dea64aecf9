// The replay server of env population (see docs/store.md, "Install scripts that download").
//
// `aishell lock` recorded every file a package's install script downloaded (URL, size,
// hash); `aishell sync` checked each against its hash into the download cache. This
// serves them, by URL, as an HTTP proxy on the population container's loopback: the
// container has no other network. Plain HTTP arrives in absolute form (Node's http, curl,
// wget) or inside a CONNECT tunnel (Node's fetch); TLS inside a tunnel cannot be served
// and is refused, as is every URL the lock does not record, each with one line saying so.
//
// Usage: node replay.js FETCHES.json PORT_FILE   (FETCHES maps URL -> file path)
"use strict";
const fs = require("fs");
const http = require("http");

const table = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));

function refuse(res, what) {
  console.error(`aishell: ${what} was not recorded by \`aishell lock\`, and population has no ` +
                "network: lock again (it records what install scripts download), or set " +
                "allow-network-install = true for this harness");
  res.writeHead(404, { "Content-Type": "text/plain", Connection: "close" });
  res.end("not recorded by aishell lock\n");
}

const server = http.createServer((req, res) => {
  const url = req.url.startsWith("/") ? `http://${req.headers.host}${req.url}` : req.url;
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
    if (chunk[0] === 0x16) { // a TLS handshake: nothing recorded can be served over it
      console.error(`aishell: an HTTPS download from ${req.url} was not recorded by ` +
                    "`aishell lock`; population has no network");
      socket.destroy();
      return;
    }
    socket.unshift(chunk);
    server.emit("connection", socket); // plain HTTP inside the tunnel
  };
  if (head && head.length) serve(head);
  else socket.once("data", serve);
});

server.listen(0, "127.0.0.1", () => {
  const tmp = `${process.argv[3]}.tmp`;
  fs.writeFileSync(tmp, String(server.address().port));
  fs.renameSync(tmp, process.argv[3]);
});
