"""Install scripts that download their binary: recorded by `aishell lock`, replayed by
`aishell sync` into a population without network (real engine, fixture registry)."""

from __future__ import annotations

import json
import tomllib
import uuid

import pytest

from tests.conftest import run_aishell
from tests.fixtures_lock import publish_fetching, write_manifest
from tests.registry_server import sri
from tests.test_lockfile import validate_schema
from tests.test_sync_engine import remove_volume, run_in_env

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


def test_an_https_download_cannot_be_recorded_and_lock_says_so(project, lock_env):
    name = f"tlsy-{uuid.uuid4().hex[:8]}"
    publish_fetching(lock_env, name, "1.0.0", "https://127.0.0.1:9/releases/tlsy.tgz")
    manifest = write_manifest(project, f'# a harness\nt = {{ npm = "{name}" }}', AMD64)
    r = run_aishell("lock", cwd=project)
    assert r.returncode == 1
    assert errors(r) == [
        (f"error: {manifest}:3: harness `t`: install scripts download over HTTPS ({name} from "
        "127.0.0.1:9); aishell can record plain-HTTP downloads only, so population (which has "
        "no network) could not repeat them"),
        (f'hint: choose one: `t = {{ npm = "{name}", allow-network-install = true }}` lets its '
        "install scripts use the network (the lock marks its env as not reproducible); or "
        "point the installer at a plain-HTTP mirror of the file if it honours a download-URL "
        "variable; or drop the harness"),
    ]
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
