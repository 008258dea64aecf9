"""Install scripts that download their binary: recorded by `aishell lock`, replayed by
`aishell sync` into a population without network (real engine, fixture registry)."""

from __future__ import annotations

import json
import tomllib
import uuid

import pytest

from tests.conftest import run_aishell
from tests.fixtures_lock import publish_fetching, write_manifest
from tests.lock.test_lockfile import validate_schema
from tests.registry_server import sri
from tests.store.test_sync_engine import remove_volume, run_in_env

pytestmark = pytest.mark.engine

AMD64 = '[settings]\nplatforms = ["linux/amd64"]\n'


@pytest.fixture
def project(tmp_path, lock_env, foundation_tag):
    p = tmp_path / "proj"
    p.mkdir()
    yield p
    lock = p / "aishell.lock"
    if lock.exists():
        for line in lock.read_text().splitlines():
            if line.startswith("id = "):
                remove_volume("aishell-env-" + line.split('"')[1][:32])


def errors(r):
    return [ln for ln in r.stderr.splitlines() if ln.startswith(("error:", "hint:"))]


def release(lock_env, name):
    """A release binary on the loopback server, as GitHub releases serve crush's."""
    data = f'#!/bin/sh\necho "{name} 1.2.3 (downloaded at install time)"\n'.encode()
    path = f"releases/download/v1.2.3/{name}-linux-x64"
    return path, lock_env.serve_file(path, data), data


def test_a_downloading_install_script_is_locked_and_replayed_without_network(
        project, lock_env, foundation_tag):
    name = f"fetchy-{uuid.uuid4().hex[:8]}"
    path, url, data = release(lock_env, name)
    publish_fetching(lock_env, name, "1.0.0", url)
    write_manifest(project, f'f = {{ npm = "{name}" }}', AMD64)

    r = run_aishell("lock", cwd=project)
    assert r.returncode == 0, r.stderr
    lock_path = project / "aishell.lock"
    validate_schema(lock_path)
    doc = tomllib.loads(lock_path.read_text())
    assert doc["version"] == 2
    assert doc["harness"]["f"]["fetch"] == [{
        "package": f"node_modules/{name}", "platform": "linux/amd64", "url": url,
        "size": len(data), "integrity": sri(data)}]

    mark = len(lock_env.log)
    r = run_aishell("sync", "--json", cwd=project)
    assert r.returncode == 0, r.stderr
    env = json.loads(r.stdout)["env"]
    assert env["state"] == "built"
    assert path not in lock_env.requests_since(mark)  # served from the download cache
    ran = run_in_env(env["volume"], foundation_tag, f"{name} --version")
    assert ran.stdout.strip() == f"{name} 1.2.3 (downloaded at install time)", ran.stderr


def test_the_env_id_covers_the_fetched_file(project, lock_env):
    name = f"fetchy-{uuid.uuid4().hex[:8]}"
    _path, url, _data = release(lock_env, name)
    publish_fetching(lock_env, name, "1.0.0", url)
    write_manifest(project, f'f = {{ npm = "{name}" }}', AMD64)
    assert run_aishell("lock", cwd=project).returncode == 0
    lock_path = project / "aishell.lock"
    text = lock_path.read_text()
    fetched = tomllib.loads(text)["harness"]["f"]["fetch"][0]["integrity"]
    lock_path.write_text(text.replace(fetched, sri(b"another binary")))
    r = run_aishell("sync", "--locked", cwd=project)
    assert r.returncode == 1
    assert errors(r)[0].startswith(f"error: {lock_path}:")
    assert "the env id for linux/amd64 does not match the lock's content" in errors(r)[0]


@pytest.fixture
def https_release(tmp_path, monkeypatch):
    """A release server speaking HTTPS on loopback, with a certificate from its own CA,
    which aishell is told to trust (as it would a corporate CA)."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from aishell.certs import find_bundle
    from aishell.store.tlsmint import Minter

    minter = Minter(tmp_path / "release-ca")
    cert, key = minter.leaf("127.0.0.1")
    bundle = tmp_path / "bundle.pem"
    system = find_bundle()
    bundle.write_text((system.read_text() if system else "") + minter.ca.read_text())
    monkeypatch.setenv("AISHELL_CA_BUNDLE", str(bundle))
    files: dict[str, bytes] = {}
    log: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            log.append(self.path)
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}", files, log
    httpd.shutdown()
    httpd.server_close()
    minter.close()


def test_an_https_download_is_recorded_and_replayed_as_its_host(
        project, lock_env, foundation_tag, https_release):
    base, files, log = https_release
    name = f"tlsy-{uuid.uuid4().hex[:8]}"
    data = f'#!/bin/sh\necho "{name} over https"\n'.encode()
    files[f"/releases/{name}"] = data
    url = f"{base}/releases/{name}"
    publish_fetching(lock_env, name, "1.0.0", url)
    write_manifest(project, f't = {{ npm = "{name}" }}', AMD64)
    r = run_aishell("lock", cwd=project)
    assert r.returncode == 0, r.stderr
    validate_schema(project / "aishell.lock")
    fetch = tomllib.loads((project / "aishell.lock").read_text())["harness"]["t"]["fetch"]
    assert [(f["url"], f["size"], f["integrity"]) for f in fetch] == [(url, len(data), sri(data))]
    assert log == [f"/releases/{name}"]
    r = run_aishell("sync", "--json", cwd=project)
    assert r.returncode == 0, r.stderr
    assert log == [f"/releases/{name}"]  # population was served from the download cache
    env = json.loads(r.stdout)["env"]
    ran = run_in_env(env["volume"], foundation_tag, f"{name} --version")
    assert ran.stdout.strip() == f"{name} over https", ran.stderr


def test_an_install_that_fails_while_recording_names_the_harness_and_the_choices(
        project, lock_env):
    name = f"broken-{uuid.uuid4().hex[:8]}"
    url = lock_env.url + f"releases/{name}-missing"  # the release was never uploaded
    publish_fetching(lock_env, name, "1.0.0", url)
    manifest = write_manifest(project, f'# a harness\nb = {{ npm = "{name}" }}', AMD64)
    r = run_aishell("lock", cwd=project)
    assert r.returncode == 1
    assert errors(r) == [
        (f"error: {manifest}:3: harness `b`: its install scripts failed (exit code 1) when "
        "`aishell lock` ran them to record what they download"),
        ("hint: their last output lines are shown above. If the installer cannot work through "
        f'a proxy, `b = {{ npm = "{name}", allow-network-install = true }}` lets it use the '
        "network when the env is built (the lock marks its env as not reproducible); else fix "
        "the cause (a download URL that fails?) and lock again"),
    ]
    assert f"downloading {json.dumps(url)} failed: HTTP 404" not in r.stderr  # JSON-quoted
    assert f"{name}: downloading {url} failed: HTTP 404" in r.stderr  # shown without -v
    assert not (project / "aishell.lock").exists()


def test_allow_network_install_is_marked_and_installs_with_the_network(
        project, lock_env, foundation_tag):
    name = f"netty-{uuid.uuid4().hex[:8]}"
    path, url, _data = release(lock_env, name)
    publish_fetching(lock_env, name, "1.0.0", url)
    write_manifest(project, f'n = {{ npm = "{name}", allow-network-install = true }}', AMD64)
    assert run_aishell("lock", cwd=project).returncode == 0
    validate_schema(project / "aishell.lock")
    harness = tomllib.loads((project / "aishell.lock").read_text())["harness"]["n"]
    assert harness["network_install"] is True and "fetch" not in harness
    mark = len(lock_env.log)
    r = run_aishell("sync", "--json", cwd=project)
    assert r.returncode == 0, r.stderr
    assert path in lock_env.requests_since(mark)  # fetched by the script itself
    env = json.loads(r.stdout)["env"]
    ran = run_in_env(env["volume"], foundation_tag, f"{name} --version")
    assert ran.stdout.strip() == f"{name} 1.2.3 (downloaded at install time)", ran.stderr
