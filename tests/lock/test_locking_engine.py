"""`aishell lock/add/remove/tree` for real: npm in a container, against the fixture registry."""

from __future__ import annotations

import json
import tomllib
import uuid

import pytest

from tests.conftest import run_aishell
from tests.fixtures_lock import write_manifest
from tests.lock.test_lockfile import validate_schema

# Fixtures shared with other lock tests (pytest finds them by name in this module).

pytestmark = pytest.mark.engine


@pytest.fixture
def project(tmp_path, lock_env, foundation_tag):
    """A project directory; whatever lock a test leaves in it must match the schema."""
    p = tmp_path / "proj"
    p.mkdir()
    yield p
    lock = p / "aishell.lock"
    if lock.exists() and "<<<<<<<" not in lock.read_text():
        validate_schema(lock)


def errors(r):
    """The error and hint lines (progress lines go to stderr too)."""
    return [ln for ln in r.stderr.splitlines() if ln.startswith(("error:", "hint:"))]


def harness(lock_text, name):
    return tomllib.loads(lock_text)["harness"][name]


def closure(lock_text, name):
    return {p["path"]: p for p in harness(lock_text, name)["closure"]}


def test_add_resolves_the_closure_with_npm_for_every_platform(project, lock_env):
    r = run_aishell("add", "a=npm:agent-a", "b=npm:agent-b@^1", "npm:@fix/agent-c", cwd=project)
    assert r.returncode == 0, r.stderr
    lock_path = project / "aishell.lock"
    validate_schema(lock_path)
    text = lock_path.read_text()
    a = closure(text, "a")
    assert harness(text, "a")["version"] == "1.0.0"  # latest, not the 2.0.0 prerelease
    assert harness(text, "a")["bins"] == ["agent-a"]
    assert a["node_modules/dep-x"]["version"] == "1.1.0"
    assert a["node_modules/dep-y/node_modules/dep-x"]["version"] == "1.0.0"  # nested by npm
    for native, cpu, os_ in (("linux-x64", "x64", "linux"), ("linux-arm64", "arm64", "linux"),
                             ("darwin-arm64", "arm64", "darwin")):
        entry = a[f"node_modules/agent-a-{native}"]
        assert entry["cpu"] == [cpu] and entry["os"] == [os_] and entry["optional"] is True
        assert entry["integrity"].startswith("sha512-")
    b = closure(text, "b")
    assert b["node_modules/agent-b"]["has_install_script"] is True
    assert b["node_modules/dep-x"]["version"] == "1.0.0"  # ~1.0.0
    assert harness(text, "agent-c")["package"] == "@fix/agent-c"
    doc = tomllib.loads(text)
    assert doc["runtime"]["nodejs"]["linux/amd64"]["version"] == "24.21.0"
    assert doc["runtime"]["npm"]["version"] == "12.2.0"
    assert set(doc["env"]) == {"linux/amd64", "linux/arm64"}
    assert doc["env"]["linux/amd64"]["id"] != doc["env"]["linux/arm64"]["id"]

    check = run_aishell("lock", "--check", cwd=project)
    assert check.returncode == 0, check.stderr
    tree = json.loads(run_aishell("tree", "--json", cwd=project).stdout)
    paths = {p["path"]: p["platforms"] for h in tree["harnesses"] if h["name"] == "a"
             for p in h["packages"]}
    assert paths["node_modules/agent-a-linux-x64"] == ["linux/amd64"]
    assert paths["node_modules/agent-a-darwin-arm64"] == []


def test_fresh_lock_relocks_without_network_or_engine(project, lock_env, tmp_path):
    write_manifest(project, 'a = { npm = "agent-a", version = "^1" }')
    assert run_aishell("lock", cwd=project).returncode == 0
    before = (project / "aishell.lock").read_bytes()
    mark = len(lock_env.log)
    # No engine either: a dead DOCKER_HOST proves a fresh re-lock never touches it.
    r = run_aishell("lock", cwd=project, env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert r.returncode == 0, r.stderr
    assert "is up to date" in r.stderr
    assert (project / "aishell.lock").read_bytes() == before
    assert lock_env.requests_since(mark) == []
    # A cosmetic manifest change (comments, order) keeps it fresh.
    write_manifest(project, '# mine\na = {version = "^1", npm = "agent-a"}  # note')
    assert run_aishell("lock", "--check", cwd=project).returncode == 0


def test_changed_spec_makes_the_lock_stale_and_check_writes_nothing(project, lock_env):
    write_manifest(project, 'a = { npm = "agent-a", version = "^1" }')
    assert run_aishell("lock", cwd=project).returncode == 0
    before = (project / "aishell.lock").read_bytes()
    write_manifest(project, 'a = { npm = "agent-a", version = "^0.9" }')
    r = run_aishell("lock", "--check", cwd=project)
    assert r.returncode == 1
    assert "a: requested '^1' -> '^0.9'" in r.stderr
    assert (project / "aishell.lock").read_bytes() == before
    assert run_aishell("lock", cwd=project).returncode == 0
    assert harness((project / "aishell.lock").read_text(), "a")["version"] == "0.9.0"


def test_missing_lock_fails_check(project, lock_env):
    write_manifest(project, 'a = { npm = "agent-a" }')
    r = run_aishell("lock", "--check", "--json", cwd=project)
    assert r.returncode == 1
    assert json.loads(r.stdout)["status"] == "missing"
    assert not (project / "aishell.lock").exists()


def test_upgrade_package_moves_only_that_one(project, lock_env):
    s = uuid.uuid4().hex[:8]
    dep, up_a, up_b = f"up-dep-{s}", f"up-a-{s}", f"up-b-{s}"
    lock_env.publish(dep, "1.0.0")
    for name in (up_a, up_b):
        lock_env.publish(name, "1.0.0", dependencies={dep: "^1.0.0"}, bin={name: "bin/x.js"})
    write_manifest(project, f'a = {{ npm = "{up_a}" }}\nb = {{ npm = "{up_b}" }}')
    assert run_aishell("lock", cwd=project).returncode == 0
    first = (project / "aishell.lock").read_text()

    for name in (dep, up_a, up_b):
        lock_env.publish(name, "1.1.0", dependencies={dep: "^1.0.0"} if name != dep else None,
                         bin={name: "bin/x.js"} if name != dep else None)
    # A new upstream release does not make the lock stale.
    assert run_aishell("lock", "--check", cwd=project).returncode == 0
    dry = run_aishell("lock", "--dry-run", "--upgrade", cwd=project)
    assert dry.returncode == 0
    assert f"~ a {up_a}@1.0.0 -> {up_a}@1.1.0" in dry.stderr
    assert f"~ b {up_b}@1.0.0 -> {up_b}@1.1.0" in dry.stderr
    assert (project / "aishell.lock").read_text() == first

    r = run_aishell("lock", "--upgrade-package", "a", cwd=project)
    assert r.returncode == 0, r.stderr
    after = (project / "aishell.lock").read_text()
    assert harness(after, "a")["version"] == "1.1.0"
    assert closure(after, "a")[f"node_modules/{dep}"]["version"] == "1.1.0"
    assert harness(after, "b") == harness(first, "b")  # b and its closure did not move
    first_b = first[first.index("[harness.b]"):]
    assert after[after.index("[harness.b]"):] == first_b

    pinned = run_aishell("lock", "--upgrade-package", "b@1.0.7", cwd=project)
    assert pinned.returncode == 1
    assert f"{up_b}@1.0.7 does not exist" in pinned.stderr
    assert (project / "aishell.lock").read_text() == after  # a failed lock changes nothing


def test_package_that_does_not_exist_leaves_the_manifest_alone(project, lock_env):
    manifest = write_manifest(project, "# keep me\n")
    before = manifest.read_text()
    r = run_aishell("add", "x=npm:no-such-agent", cwd=project)
    assert r.returncode == 1
    assert errors(r)[0] == (f"error: package no-such-agent does not exist on {lock_env.url} "
                            "(harness `x`) (aishell.toml was left unchanged)")
    assert manifest.read_text() == before
    assert not (project / "aishell.lock").exists()


def test_version_that_does_not_exist_lists_the_nearest(project, lock_env):
    r = run_aishell("add", "a=npm:agent-a@^5", cwd=project)
    assert r.returncode == 1
    lines = errors(r)
    assert lines[0] == ("error: no version of agent-a matches '^5' (harness `a`) "
                        "(aishell.toml was left unchanged)")
    assert lines[1] == "hint: nearest published: 0.9.0, 1.0.0"
    assert "Traceback" not in r.stderr


def test_registry_unreachable(project, lock_env):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    write_manifest(project, 'a = { npm = "agent-a" }')
    r = run_aishell("lock", cwd=project, env={"npm_config_registry": f"http://127.0.0.1:{port}/"})
    assert r.returncode == 1
    assert errors(r)[0].startswith(f"error: cannot reach the npm registry http://127.0.0.1:{port}/:")
    assert not (project / "aishell.lock").exists()


def test_npm_failure_is_reported_and_nothing_is_written(project, lock_env):
    s = uuid.uuid4().hex[:8]
    lock_env.publish(f"broken-{s}", "1.0.0", dependencies={f"missing-{s}": "^1"})
    write_manifest(project, f'x = {{ npm = "broken-{s}" }}')
    r = run_aishell("lock", cwd=project)
    assert r.returncode == 1
    assert errors(r)[0] == (f"error: {project / 'aishell.toml'}:2: harness `x`: npm could not "
                            "resolve the closure:")
    assert f"missing-{s}" in r.stderr
    assert not (project / "aishell.lock").exists()


def test_remove_relocks_and_keeps_comments(project, lock_env):
    write_manifest(project, '# top\na = { npm = "agent-a" }  # first\n'
                            'c = { npm = "@fix/agent-c" }  # second\n')
    assert run_aishell("lock", cwd=project).returncode == 0
    r = run_aishell("remove", "c", cwd=project)
    assert r.returncode == 0, r.stderr
    assert (project / "aishell.toml").read_text() == \
        '[harnesses]\n# top\na = { npm = "agent-a" }  # first\n\n'
    assert set(tomllib.loads((project / "aishell.lock").read_text())["harness"]) == {"a"}


def test_conflicted_lock_is_one_line(project, lock_env):
    write_manifest(project, 'a = { npm = "agent-a" }')
    assert run_aishell("lock", cwd=project).returncode == 0
    path = project / "aishell.lock"
    path.write_text("<<<<<<< ours\n" + path.read_text() + "=======\n>>>>>>> theirs\n")
    r = run_aishell("lock", "--check", cwd=project)
    assert r.returncode == 1
    assert errors(r)[0] == f"error: {path}:1: unresolved merge-conflict markers"


def test_changed_spec_keeps_locked_dependencies_that_still_fit(project, lock_env):
    s = uuid.uuid4().hex[:8]
    dep, user = f"pref-dep-{s}", f"pref-user-{s}"
    lock_env.publish(dep, "1.0.0")
    lock_env.publish(user, "1.0.0", dependencies={dep: "^1.0.0"})
    write_manifest(project, f'u = {{ npm = "{user}", version = "1.0.0" }}')
    assert run_aishell("lock", cwd=project).returncode == 0
    lock_env.publish(dep, "1.1.0")
    lock_env.publish(user, "1.1.0", dependencies={dep: "^1.0.0"})
    write_manifest(project, f'u = {{ npm = "{user}", version = "^1.1" }}')
    assert run_aishell("lock", cwd=project).returncode == 0
    text = (project / "aishell.lock").read_text()
    assert harness(text, "u")["version"] == "1.1.0"
    assert closure(text, "u")[f"node_modules/{dep}"]["version"] == "1.0.0"  # kept, like uv
    assert run_aishell("lock", "--upgrade-package", "u", cwd=project).returncode == 0
    text = (project / "aishell.lock").read_text()
    assert closure(text, "u")[f"node_modules/{dep}"]["version"] == "1.1.0"  # upgrade: fresh


def test_npm_ci_of_the_locked_closure_installs_what_the_lock_says(project, lock_env,
                                                                  foundation_tag, tmp_path):
    from aishell.engine import Engine
    from aishell.lock.closure import installed
    from aishell.lock.freshness import read_lock
    from aishell.lock.lockfile import to_package_lock
    from aishell.lock.registry import Registry
    from aishell.lock.resolver import NPM, Environment, run_npm
    from aishell.lock.runtime import unpacked
    from aishell.paths import default_paths

    write_manifest(project, 'a = { npm = "agent-a" }')
    assert run_aishell("lock", cwd=project).returncode == 0
    lock = read_lock(project / "aishell.lock")
    h = lock.harness("a")
    work = tmp_path / "ci"
    target = work / "h" / "a"
    target.mkdir(parents=True)
    work.chmod(0o755)
    (target / "package.json").write_text(json.dumps(
        {"name": "aishell-env-a", "version": "0.0.0", "dependencies": {h.package: h.version}}))
    (target / "package-lock.json").write_text(json.dumps(to_package_lock(h, "aishell-env-a")))
    cache = default_paths().cache
    registry = Registry(lock_env.url)
    env = Environment(registry=registry, cache=cache, engine=Engine, image=lambda: foundation_tag)
    node_dir = unpacked(registry, cache, lock.node["linux/amd64"])
    npm_dir = unpacked(registry, cache, lock.npm)
    run_npm(env, foundation_tag, work, node_dir, npm_dir,
            script=f"set -e; cd /work/h/a; {NPM} ci --ignore-scripts --no-audit --no-fund")
    on_disk = {p["path"] for p in h.packages if (target / p["path"] / "package.json").is_file()}
    expected = {p["path"] for p in installed(h.packages, h.package, "linux/amd64")}
    assert on_disk == expected
    assert "node_modules/agent-a-linux-x64" in on_disk
    assert "node_modules/agent-a-linux-arm64" not in on_disk


def test_lock_rebuilds_a_truncated_lock_that_check_and_sync_refuse(project, lock_env):
    write_manifest(project, 'a = { npm = "agent-a" }')
    assert run_aishell("lock", cwd=project).returncode == 0
    path = project / "aishell.lock"
    good = path.read_text()
    cut = good[:good.index('integrity = "sha512-') + 30]
    path.write_text(cut)  # e.g. a full disk while copying it
    where = f"{path}:{len(cut.splitlines())}"
    hint = ("hint: `aishell lock` rebuilds a lock it cannot read from aishell.toml "
            "(or restore it: `git checkout aishell.lock`)")
    for argv in (("lock", "--check"), ("sync", "--locked")):
        r = run_aishell(*argv, cwd=project)
        assert r.returncode == 1
        message = (f"error: {where}: invalid TOML: Unterminated string at the end of the "
                   "file (is it cut short?)")
        assert errors(r) == [message, hint]
    r = run_aishell("lock", cwd=project)
    assert r.returncode == 0, r.stderr
    assert (f"warning: {where}: invalid TOML: Unterminated string at the end of the file "
            "(is it cut short?); rebuilding it from aishell.toml") in r.stderr.splitlines()
    assert path.read_text() == good
