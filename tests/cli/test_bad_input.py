"""Bad input never crashes: property-based tests of the one-line error path.

Hypothesis generates malformed and truncated ``aishell.toml``, ``aishell.lock``, original
``.aishell/config.yaml``, store index files and odd argv; the real CLI (``cli.main``, in
process) reads them. Every case must end with exit 0, 1 or 2 (2: a usage error), with no
traceback, no "aishell crashed" and no bug report; a failing case writes nothing.

Fast tier: no engine and no registry are reachable (``DOCKER_HOST`` and the registry point
at nothing), so a command that gets that far fails with the engine's one-line error. The
number of cases is fixed by the ``ci`` Hypothesis profile (tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from aishell import cli, process
from tests.project.test_compat import ORIGINAL

ROOT = Path(__file__).resolve().parents[2]
LOCK_SEED = (ROOT / "aishell.lock.example").read_text(encoding="utf-8")
TOML_SEED = """\
# a project
[harnesses]
claude = "^2.1"
mine = { package = "npm:@scope/pkg", version = "1.2.3", bins = ["mine"] }

[foundation]
base = "debian:trixie-slim"
packages = ["ripgrep"]

[run]
mounts = ["~/.gitconfig:ro", "/srv/data:/data:ro"]
env = { DEBUG = "1", EDITOR = "" }
ports = ["127.0.0.1:8080:80"]
docker_args = ["--cpus=2"]
pre_start = ["echo ready"]
harness_args = { claude = ["--model", "sonnet"] }
sudo = false

[security]
strict = false
detection = true
allowlist = [{ path = "tests/fake.pem", reason = "fixture" }]
custom_patterns = { "*.secret" = "high" }
gitleaks_freshness_days = 7

[settings]
registry = "http://127.0.0.1:9/"
"""
NOW = "2026-01-01T00:00:00+00:00"
INDEX_SEED = json.dumps({
    "version": 1,
    "projects": {"/p": {
        "path": "/p", "lock_path": "/p/aishell.lock", "locked": True,
        "env_ids": {"linux/amd64": "ab" * 32}, "images": [{"role": "foundation", "id": "sha256:1",
                                                            "tag": "t"}],
        "first_seen": NOW, "last_used": NOW, "current": 1,
        "generations": [{"number": 1, "lock_digest": "cd" * 32, "env_ids": {},
                         "images": [], "created": NOW, "last_used": NOW}],
    }},
    "pins": {"keep": {"project": "/p", "created": NOW, "env_ids": ["ab" * 32], "images": [],
                      "lock_digest": None}},
    "last_used": {"env:" + "ab" * 32: NOW},
}, indent=1)
GITLEAKS_SEED = json.dumps({"project": "/p", "scanned_at": NOW, "exit_code": 0, "seconds": 1.0})

# -- generators ----------------------------------------------------------------------------
JUNK = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
               max_size=40)
SCALAR = st.one_of(st.integers(-2**70, 2**70), st.booleans(), JUNK,
                   st.floats(allow_nan=True, allow_infinity=True))


def toml_value(value: object) -> str:
    """A value written as TOML (inline forms only)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if -2**63 <= value < 2**63 else json.dumps(str(value))
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(str(value), repr(value))
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise AssertionError(value)


VALUE = st.recursive(SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(JUNK, inner, max_size=3)), max_leaves=8)
TABLES = {
    "harnesses": ["claude", "codex", "mine", "npm:x"],
    "run": ["mounts", "env", "ports", "docker_args", "pre_start", "harness_args", "sudo",
            "skip_permissions"],
    "security": ["strict", "detection", "allowlist", "custom_patterns",
                 "gitleaks_freshness_days"],
    "foundation": ["base", "packages", "dockerfile"],
    "settings": ["registry", "engine", "ca_bundle"],
    "network": ["mode", "allow"],
    "store": ["keep_generations", "older_than"],
}
KEYS = st.sampled_from([k for keys in TABLES.values() for k in keys]) | JUNK


@st.composite
def typed_toml(draw: st.DrawFn) -> str:
    """Well-formed TOML whose tables hold values of any type (the wrong ones included)."""
    lines: list[str] = []
    if draw(st.booleans()):  # a top-level key, or a table that is not a table
        lines.append(f"{json.dumps(draw(st.sampled_from(list(TABLES)) | JUNK))} = "
                     f"{toml_value(draw(VALUE))}")
    for table in draw(st.lists(st.sampled_from(list(TABLES)), unique=True, max_size=4)):
        lines.append(f"[{table}]")
        keys = st.sampled_from(TABLES[table]) | KEYS
        for key in draw(st.lists(keys, unique=True, max_size=4)):
            lines.append(f"{json.dumps(key)} = {toml_value(draw(VALUE))}")
    return "\n".join(lines) + "\n"


Content = str | bytes | None  # None: a directory where the file should be


def mangled(seed: str) -> st.SearchStrategy[Content]:
    """``seed`` truncated anywhere, or with a span replaced by junk (text or bytes that are
    not UTF-8), or junk alone, or a directory in the file's place."""
    n = len(seed)
    raw = seed.encode()
    cut = st.integers(0, n).map(lambda i: seed[:i])
    splice = st.tuples(st.integers(0, n), st.integers(0, 20), JUNK).map(
        lambda t: seed[:t[0]] + t[2] + seed[t[0] + t[1]:])
    splice_bytes = st.tuples(st.integers(0, len(raw)), st.binary(min_size=1, max_size=8)).map(
        lambda t: raw[:t[0]] + t[1] + raw[t[0]:])
    return st.one_of(cut, splice, splice_bytes, JUNK, st.binary(max_size=40), st.none())


def put(path: Path, content: Content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


# -- running the CLI ------------------------------------------------------------------------
class Outcome:
    def __init__(self, code: int, out: str, err: str, written: set[str]) -> None:
        self.code, self.out, self.err, self.written = code, out, err, written


def _snapshot(*roots: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for root in roots:
        for path in root.rglob("*"):
            # flock(2) sentinels (empty files that only carry a lock) and the state
            # directory's README (written when the directory is made) hold no data
            if path.is_file() and not (path.suffix == ".lock" and path.stat().st_size == 0
                                       and path.name != "aishell.lock") \
                    and path.relative_to(root).as_posix() != "state/README":
                files[str(path)] = path.read_bytes()
    return files


def _would_exec(argv: object) -> int:
    raise AssertionError(f"a bad-input case reached exec: {argv}")


@contextlib.contextmanager
def sandbox_dirs() -> Iterator[tuple[Path, Path]]:
    with tempfile.TemporaryDirectory(prefix="aishell-bad-") as tmp:
        home, project = Path(tmp) / "home", Path(tmp) / "proj"
        home.mkdir()
        project.mkdir()
        yield home, project


def run_cli(argv: list[str], home: Path, project: Path) -> Outcome:
    env = {
        "AISHELL_HOME": str(home), "HOME": str(home / "user"),
        "DOCKER_HOST": f"unix://{home}/no-engine.sock",
        "npm_config_registry": "http://127.0.0.1:9/", "NO_COLOR": "1",
    }
    before = _snapshot(home, project)
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, env), \
            mock.patch.object(process, "replace_process", _would_exec), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(["--project", str(project), *argv])
        finally:
            process.VERBOSE = False
    after = _snapshot(home, project)
    written = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    return Outcome(code, out.getvalue(), err.getvalue(), written)


def assert_clean(o: Outcome, home: Path, *, may_write: bool = False) -> None:
    """No crash, a known exit code; a failure is the one-line error path and writes nothing."""
    text = o.err + o.out
    first = next((line for line in o.err.splitlines() if line.startswith("error:")), "")
    event(f"exit {o.code}: {first.replace(str(home.parent), '')[:50]}")
    assert "Traceback" not in text, text
    assert "aishell crashed" not in text, text
    assert not (home / "state" / "bug-reports").exists(), text
    assert o.code in (0, 1, 2), (o.code, text)
    if o.code == 1:  # one error (a `--check` answers "stale" with exit 1 and no error)
        errors = [line for line in o.err.splitlines() if line.startswith("error: ")]
        assert len(errors) <= 1, o.err
    if o.code == 2:
        assert "error:" in o.err, o.err
    if o.code != 0 or not may_write:
        assert not o.written, (o.written, text)


# Commands that only read: each must turn bad input into a clean answer.
TOML_COMMANDS = [["tree"], ["lock", "--check"], ["lock", "--dry-run"], ["sync", "--check"],
                 ["info", "--json"], ["exec", "--", "true"], ["shell"], ["verify"],
                 ["migrate", "--dry-run"], ["gitleaks"]]
LOCK_COMMANDS = [["tree"], ["lock", "--check"], ["sync", "--check"], ["verify"],
                 ["exec", "--", "true"], ["run", "claude"], ["rollback", "--dry-run"]]
YAML_COMMANDS = [["tree"], ["lock", "--check"], ["migrate", "--dry-run"],
                 ["exec", "--", "true"], ["shell"], ["info", "--json"]]
INDEX_COMMANDS = [["pin", "--list"], ["rollback", "--list"], ["unpin", "keep"], ["pin"],
                  ["gc", "--dry-run"], ["store", "ls"], ["rollback", "--dry-run"]]


@given(text=st.one_of(mangled(TOML_SEED), typed_toml()),
       argv=st.sampled_from(TOML_COMMANDS))
def test_malformed_aishell_toml(text: Content, argv: list[str]) -> None:
    with sandbox_dirs() as (home, project):
        put(project / "aishell.toml", text)
        assert_clean(run_cli(argv, home, project), home)


@given(text=mangled(LOCK_SEED), argv=st.sampled_from(LOCK_COMMANDS))
def test_malformed_aishell_lock(text: Content, argv: list[str]) -> None:
    with sandbox_dirs() as (home, project):
        (project / "aishell.toml").write_text('[harnesses]\nclaude = "^2.1"\n', encoding="utf-8")
        put(project / "aishell.lock", text)
        assert_clean(run_cli(argv, home, project), home)


@given(text=mangled(ORIGINAL), argv=st.sampled_from(YAML_COMMANDS))
def test_malformed_original_config_yaml(text: Content, argv: list[str]) -> None:
    with sandbox_dirs() as (home, project):
        put(project / ".aishell" / "config.yaml", text)
        assert_clean(run_cli(argv, home, project), home)


@given(text=st.one_of(mangled(INDEX_SEED), VALUE.map(json.dumps)),
       argv=st.sampled_from(INDEX_COMMANDS))
def test_malformed_index(text: Content, argv: list[str]) -> None:
    with sandbox_dirs() as (home, project):
        put(home / "state" / "index.json", text)
        o = run_cli(argv, home, project)
        # `pin` and `unpin` change a readable index on success; a failure writes nothing
        assert_clean(o, home, may_write=argv[0] in ("pin", "unpin"))


@given(text=st.one_of(mangled(GITLEAKS_SEED), VALUE.map(json.dumps)))
def test_malformed_gitleaks_record(text: Content) -> None:
    """The scan record a launch's preflight reads (the CLI would stop at the engine first)."""
    from aishell.paths import default_paths
    from aishell.project.context import Context
    from aishell.security.gitleaks import _record_path
    from aishell.security.preflight import preflight

    with sandbox_dirs() as (home, project), mock.patch.dict(os.environ, {"AISHELL_HOME": str(home)}):
        put(_record_path(home / "state", project.resolve()), text)
        before = _snapshot(home, project)
        ctx = Context(project=project.resolve(), paths=default_paths(), quiet=True)
        warnings = preflight(ctx, interactive=True, unsafe=False, ask=None)
        event(f"{len(warnings)} warning(s)")
        assert _snapshot(home, project) == before


@given(text=mangled(TOML_SEED), argv=st.sampled_from(TOML_COMMANDS))
def test_malformed_global_config(text: Content, argv: list[str]) -> None:
    with sandbox_dirs() as (home, project):
        put(home / "config" / "config.toml", text)
        assert_clean(run_cli(argv, home, project), home)


@given(git=mangled("gitdir: /elsewhere/.git/worktrees/x\n"),
       ignore=mangled("node_modules\n!keep\n**/*.log\n"),
       argv=st.sampled_from([["exec", "--", "true"], ["tree"], ["info", "--json"], ["build"]]))
def test_malformed_git_pointer_and_dockerignore(git: Content, ignore: Content,
                                                argv: list[str]) -> None:
    with sandbox_dirs() as (home, project):
        put(project / ".git", git)
        put(project / ".dockerignore", ignore)
        put(project / ".aishell" / "Dockerfile", "FROM scratch\n")
        assert_clean(run_cli(argv, home, project), home)


WORDS = st.sampled_from([
    *cli.COMMANDS, "lock", "add", "remove", "tree", "init", "claude", "--", "-", "",
    "--json", "--all", "--name", "--older-than", "--keep-generations", "--max-freed", "--to",
    "-t", "--time", "--volume", "-p", "-e", "--project", "--upgrade-package", "-d",
    "--frozen", "--locked", "--offline", "--unsafe", "--dry-run", "--check", "--list",
    "30d", "-1", "0", "99999999999999999999", "1e3", "10X", "=", "a=b", "NAME=", "::", "x:y:z:w",
    "8080", "0.0.0.0:1:2", "~/.ssh", "/", "ünï", "a" * 300,
])


@given(argv=st.lists(WORDS | JUNK, min_size=1, max_size=6))
def test_odd_argv(argv: list[str]) -> None:
    with sandbox_dirs() as (home, project):
        o = run_cli(argv, home, project)
        # `init` and `add` write aishell.toml when the argv happens to be valid
        assert_clean(o, home, may_write=True)


DELETED_CWD_ARGV = [["unpin", "keep"], ["pin", "--list"], ["tree"], ["ps"], ["gc", "--dry-run"],
                    ["exec", "--", "true"], ["claude"], ["--project", "rel", "tree"], []]


@pytest.mark.parametrize("argv", DELETED_CWD_ARGV, ids=lambda a: " ".join(a) or "(bare)")
def test_a_deleted_working_directory_is_one_line(tmp_path: Path, argv: list[str],
                                                 private_state: Path) -> None:
    import subprocess
    import sys

    gone = tmp_path / "gone"
    gone.mkdir()
    # A child that starts in the directory, which is removed before aishell runs.
    code = ("import os, sys, runpy; os.rmdir(sys.argv[1]); sys.argv = ['aishell', *sys.argv[2:]];"
            "runpy.run_module('aishell', run_name='__main__')")
    r = subprocess.run([sys.executable, "-c", code, str(gone), *argv], cwd=gone,
                       capture_output=True, text=True, timeout=60, check=False,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 1, r.stderr
    assert r.stderr.splitlines()[0] == "error: the current directory no longer exists", r.stderr
    assert "crashed" not in r.stderr and "Traceback" not in r.stderr
    assert not (private_state / "state" / "bug-reports").exists()
