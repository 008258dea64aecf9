"""Install scripts that download: record at lock time, replay at population.

Some packages' install scripts download a release binary (crush's install.js fetches its
archive from GitHub releases). Env population has no network, so such a download is
treated like a Nix fixed-output derivation: `aishell lock` runs the harness's install
once, networked, with every install script's HTTP(S) proxy pointing at a
:class:`RecordingProxy` of its own on the host's loopback (so each download is tied to
the package that made it). The proxy fetches each URL, stores the bytes in the download
cache under their sha512 and records URL, size and hash; the lock keeps them
(``[[harness.<name>.fetch]]``) and they are part of the env id. `aishell sync` fetches
them into the cache like any tarball (checking the hash) and population serves them from
a replay server on the population container's own loopback (aishell/resources/replay.js).

What can be recorded: HTTP sent through the proxy in absolute form (Node's http, curl,
wget) or in a CONNECT tunnel (Node's fetch), and HTTPS in a tunnel: the proxy answers as
the host asked for, with a certificate from a CA made for this run that only the install
scripts trust (aishell.store.tlsmint), and checks the real server itself. Without openssl
an HTTPS tunnel is refused and the lock fails naming the package and hosts. A script that
ignores the proxy variables is not seen; if it fails while recording, the lock fails
naming the harness and the choices, else its env fails to build (no network).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import ipaddress
import os
import re
import socket
import ssl
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aishell.errors import AishellError
from aishell.lock.cache import DownloadCache, ssl_context
from aishell.lock.lockfile import Lock
from aishell.project.context import Context
from aishell.request import ContainerRequest, Mount
from aishell.store import plan as envplan
from aishell.store.tlsmint import Minter

CAPTURE_TIMEOUT = 1800.0
MAX_BYTES = 2 << 30  # a recorded download larger than 2 GiB is refused


@dataclass
class Recorded:
    """What one install script fetched through its proxy."""

    fetches: list[dict[str, Any]] = field(default_factory=list)
    tls_hosts: list[str] = field(default_factory=list)  # CONNECTs that carried TLS
    failed: list[str] = field(default_factory=list)  # upstream errors (the script saw them)


@dataclass(frozen=True)
class Capture:
    """Per harness: the fetches to lock, and per script package what could not be recorded."""

    fetches: Mapping[str, tuple[dict[str, Any], ...]]
    tls_hosts: Mapping[str, Mapping[str, tuple[str, ...]]]  # harness -> package path -> hosts
    platform: str
    failure: tuple[int, str] | None = None  # the install failed: (exit code, output)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    return False


class RecordingProxy:
    """An HTTP forward proxy on 127.0.0.1 that records each GET it forwards."""

    def __init__(self, cache: DownloadCache, package: str, platform: str,
                 minter: Minter | None = None) -> None:
        self.recorded = Recorded()
        self._minter = minter
        self._lock = threading.Lock()
        self._cache = cache
        self._package = package
        self._platform = platform
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = self.path if "://" in self.path else \
                    f"http://{self.headers.get('Host', '')}{self.path}"
                proxy._serve(self, url)

            def do_CONNECT(self) -> None:
                self.send_response(200, "Connection established")
                self.end_headers()
                self.close_connection = True
                scheme = "http"  # plain HTTP inside the tunnel (Node's fetch tunnels http://)
                if self.connection.recv(1, socket.MSG_PEEK)[:1] == b"\x16":  # TLS ClientHello
                    if proxy._minter is None:
                        with proxy._lock:
                            proxy.recorded.tls_hosts.append(self.path)
                        return
                    self._terminate_tls()
                    scheme = "https"
                line = self.rfile.readline(65537).decode("latin-1").split()
                headers = http.client.parse_headers(self.rfile)
                if len(line) != 3 or line[0] != "GET":
                    return
                default = ":443" if scheme == "https" else ":80"
                host = headers.get("Host") or self.path.removesuffix(default)
                proxy._serve(self, f"{scheme}://{host}{line[1]}")
                with contextlib.suppress(OSError):
                    self.wfile.flush()

            def _terminate_tls(self) -> None:
                """Speak TLS to the script ourselves, as the host it asked for (tlsmint)."""
                assert proxy._minter is not None
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(*proxy._minter.leaf(self.path.rsplit(":", 1)[0]))
                tls = context.wrap_socket(self.connection, server_side=True)
                self.connection = tls
                self.rfile = tls.makefile("rb")
                self.wfile = tls.makefile("wb")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _open(self, url: str) -> Any:
        host = urllib.parse.urlsplit(url).hostname or ""
        # Loopback is never sent to an upstream proxy; anything else follows HTTP(S)_PROXY
        # and the CA bundle, like every other aishell download.
        opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=ssl_context(self._cache.ca_bundle)),
            urllib.request.ProxyHandler({} if _is_loopback(host) else None))
        request = urllib.request.Request(url, headers={"User-Agent": "aishell-lock"})  # noqa: S310 - http(s) only: the proxy gets no other scheme
        return opener.open(request, timeout=self._cache.timeout)

    def _serve(self, handler: BaseHTTPRequestHandler, url: str) -> None:
        if not url.startswith(("http://", "https://")):
            _answer(handler, 400, b"")
            return
        try:
            with self._open(url) as resp:
                data = resp.read(MAX_BYTES + 1)
        except urllib.error.HTTPError as exc:
            with self._lock:
                self.recorded.failed.append(f"{url}: HTTP {exc.code}")
            _answer(handler, exc.code, b"")
            return
        except (urllib.error.URLError, OSError) as exc:
            with self._lock:
                self.recorded.failed.append(f"{url}: {getattr(exc, 'reason', exc)}")
            _answer(handler, 502, b"")
            return
        if len(data) > MAX_BYTES:
            _answer(handler, 507, b"")
            return
        integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
        _store(self._cache, integrity, data)
        with self._lock:
            if not any(f["url"] == url for f in self.recorded.fetches):
                self.recorded.fetches.append({
                    "package": self._package, "platform": self._platform, "url": url,
                    "size": len(data), "integrity": integrity})
        _answer(handler, 200, data)


def _answer(handler: BaseHTTPRequestHandler, code: int, body: bytes) -> None:
    with contextlib.suppress(OSError):
        handler.send_response(code)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def _store(cache: DownloadCache, integrity: str, data: bytes) -> None:
    """Put ``data`` in the cache under ``integrity`` (atomically; a no-op when present)."""
    final = cache.path_for(integrity)
    if final.is_file():
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=final.parent, prefix=final.name + ".", suffix=".part")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    Path(name).chmod(0o444)
    Path(name).replace(final)


TLS_DIR = "tls"  # in the plan directory: the run's CA certificate and host certificates


def write_plan(plan: envplan.EnvPlan, cache: DownloadCache, directory: Path,
               proxies: envplan.Proxies | None = None, minter: Minter | None = None) -> None:
    """The plan directory (mounted at /plan): install script, package locks, and a
    ``.tgz``-named symlink into the read-only cache mount for every cached file (npm tells
    a tarball from a directory by its extension). ``minter`` (made in ``directory/tls``)
    lets the scripts' HTTPS be recorded or replayed."""
    directory.chmod(0o755)
    ca: str | None = None
    tls: dict[str, tuple[str, str]] | None = None
    if minter is not None:
        inside = f"{envplan.PLAN_MOUNT}/{TLS_DIR}"
        ca = f"{inside}/{minter.ca.name}"
        if proxies is None:  # replay: a certificate for every host a recorded URL names
            hosts = {urllib.parse.urlsplit(d.url).hostname or "" for h in plan.harnesses
                     for d in h.fetches if d.url.startswith("https://")}
            tls = {}
            for host in sorted(h for h in hosts if h):
                cert, key = minter.leaf(host)
                tls[host] = (f"{inside}/{cert.name}", f"{inside}/{key.name}")
    links = directory / "tarballs"
    links.mkdir()

    def where(integrity: str) -> str:
        rel = cache.path_for(integrity).relative_to(cache.root).as_posix()
        name = rel.replace("/", "-") + ".tgz"
        link = links / name
        if not link.is_symlink():
            link.symlink_to(f"{envplan.CACHE_MOUNT}/{rel}")
        return f"{envplan.PLAN_MOUNT}/tarballs/{name}"

    for name, text in plan.files(where, proxies, ca=ca, tls=tls).items():
        (directory / name).write_text(text, encoding="utf-8")


def needs_capture(lock: Lock, platform: str) -> list[str]:
    """Harnesses whose install scripts run on ``platform`` without the network."""
    plan = envplan.plan(lock, platform)
    return [h.name for h in plan.harnesses if h.scripts and not h.network_install]


def capture(ctx: Context, lock: Lock, names: Sequence[str], *, image: str,
            on_status: Callable[[str], None] = lambda _m: None) -> Capture:
    """Run the install of harnesses ``names`` networked, each install script behind its own
    recording proxy; return what they fetched."""
    from aishell import certs  # noqa: PLC0415

    platform = f"linux/{ctx.engine.arch()}"
    subset = replace(lock, harnesses=tuple(h for h in lock.harnesses if h.name in names))
    plan = envplan.plan(subset, platform)
    bundle = certs.find_bundle(ctx.config.table("settings").get("ca_bundle"))
    cache = DownloadCache(ctx.paths.downloads, ca_bundle=bundle)
    for d in plan.downloads:
        if not d.url.startswith(("http://", "https://", "file:")):
            continue
        cache.fetch(d.url, d.integrity, d.name)
    with tempfile.TemporaryDirectory(prefix="aishell-capture-") as tmp, \
            contextlib.ExitStack() as stack:
        minter: Minter | None = None
        with contextlib.suppress(AishellError):  # no openssl: HTTPS is refused, and said so
            minter = stack.enter_context(Minter(Path(tmp) / TLS_DIR))
        proxies = stack.enter_context(_proxies(cache, plan, platform, minter))
        write_plan(plan, cache, Path(tmp), {k: p.url for k, p in proxies.items()}, minter)
        on_status("running install scripts to record what they download: " + ", ".join(names))
        failure = _run(ctx, plan, cache, Path(tmp), image)
    fetches: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    tls: dict[str, dict[str, tuple[str, ...]]] = {}
    for (harness, path), proxy in proxies.items():
        fetches[harness] += proxy.recorded.fetches
        if proxy.recorded.tls_hosts:
            tls.setdefault(harness, {})[path] = tuple(sorted(set(proxy.recorded.tls_hosts)))
    return Capture({n: tuple(f) for n, f in fetches.items()}, tls, platform, failure)


@contextlib.contextmanager
def _proxies(cache: DownloadCache, plan: envplan.EnvPlan, platform: str,
             minter: Minter | None) -> Iterator[dict[tuple[str, str], RecordingProxy]]:
    proxies: dict[tuple[str, str], RecordingProxy] = {}
    try:
        for h in plan.harnesses:
            for path in h.scripts:
                proxies[(h.name, path)] = RecordingProxy(cache, path, platform, minter)
        yield proxies
    finally:
        for proxy in proxies.values():
            proxy.close()


def _run(ctx: Context, plan: envplan.EnvPlan, cache: DownloadCache, plan_dir: Path,
         image: str) -> tuple[int, str] | None:
    volume = f"aishell-capture-{uuid.uuid4().hex[:16]}"
    labels = {"dev.aishell.managed": "1", "dev.aishell.kind": "capture"}
    engine = ctx.engine
    engine.create_volume(volume, labels)
    try:
        req = ContainerRequest(
            image=image,
            command=("bash", f"{envplan.PLAN_MOUNT}/install.sh"),
            name=f"aishell-capture-{uuid.uuid4().hex[:12]}",
            mounts=(Mount(volume, envplan.TOOLS, kind="volume", no_copy=True),
                    Mount(str(cache.root), envplan.CACHE_MOUNT, read_only=True),
                    Mount(str(plan_dir), envplan.PLAN_MOUNT, read_only=True)),
            labels=labels,
            network="host",  # the recording proxies listen on the host's loopback
            interactive=False,
            entrypoint=(),
        )
        code, log = engine.run_to_completion(req, timeout=CAPTURE_TIMEOUT)
    finally:
        with contextlib.suppress(AishellError):
            engine.remove_volume(volume)
    return (code, log) if code != 0 else None


def recorder(ctx: Context, image: Callable[[], str]) -> Callable[..., tuple[Lock, list[str]]]:
    """The lock stage's hook (aishell.lock.locking): record the downloads of every harness
    whose closure is new in ``new``; keep what ``previous`` recorded for the others."""

    def record(new: Lock, previous: Lock | None, manifest: Any,
               on_status: Callable[[str], None]) -> tuple[Lock, list[str]]:
        platform = f"linux/{ctx.engine.arch()}"
        # A harness kept from the previous lock keeps its record (a fresh re-lock runs
        # nothing); one resolved anew runs its install scripts once, here.
        fresh = [n for n in needs_capture(new, platform)
                 if previous is None or previous.harness(n) != new.harness(n)]
        if not fresh:
            return new, []
        result = capture(ctx, new, fresh, image=image(), on_status=on_status)
        for name, packages in sorted(result.tls_hosts.items()):
            spec = manifest.harness(name)
            shown = "; ".join(f"{path.rsplit('node_modules/', 1)[-1]} from {', '.join(hosts)}"
                              for path, hosts in sorted(packages.items()))
            raise AishellError(
                spec.at(f"harness `{name}`: install scripts download over HTTPS ({shown}); "
                        "aishell can record plain-HTTP downloads only, so population (which "
                        "has no network) could not repeat them"),
                hint=f"choose one: `{name} = {{ npm = \"{spec.package}\", allow-network-install "
                "= true }` lets its install scripts use the network (the lock marks its env "
                "as not reproducible); or point the installer at a plain-HTTP mirror of the "
                "file if it honours a download-URL variable; or drop the harness")
        if result.failure is not None:
            raise _failed(manifest, fresh, *result.failure)
        harnesses = tuple(replace(h, fetches=tuple(sorted(
            result.fetches[h.name], key=lambda f: (f["platform"], f["package"], f["url"]))))
            if h.name in result.fetches else h for h in new.harnesses)
        warnings = [f"{name}: install scripts were run on {platform} only; on "
                    f"{', '.join(p for p in new.platforms if p != platform)} their downloads "
                    "are not recorded, so its env there fails to build (lock on such an engine)"
                    for name in fresh if result.fetches.get(name)
                    and any(p != platform for p in new.platforms)]
        return replace(new, harnesses=harnesses), warnings

    return record



def _failed(manifest: Any, names: Sequence[str], code: int, log: str) -> AishellError:
    """The install failed while recording: name the harness (from the install script's own
    "installing X failed" line) at its manifest line, with the choices."""
    failed = re.search(r"aishell: installing (\S+) failed", log)
    name = failed.group(1) if failed else names[0]
    spec = manifest.harness(name)
    error = AishellError(
        spec.at(f"harness `{name}`: its install scripts failed (exit code {code}) when "
                "`aishell lock` ran them to record what they download"),
        hint="their last output lines are shown above. If the installer cannot work through "
        f'a proxy, `{name} = {{ npm = "{spec.package}", allow-network-install = true }}` lets '
        "it use the network when the env is built (the lock marks its env as not "
        "reproducible); else fix the cause (a download URL that fails?) and lock again")
    error.log = "\n".join(log.splitlines()[-20:])
    return error
