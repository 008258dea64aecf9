"""The [run] table: syntax, expansion, merge semantics and file:line errors (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aishell.errors import ConfigError
from aishell.project import config
from aishell.request import Mount, Port
from aishell.run import config as runconfig
from aishell.run.config import SpecError, parse_mount, parse_port, pre_start_command
from aishell.run.identity import HostUser

USER = HostUser(uid=1234, gid=5678, name="ada", home="/home/ada")
PROJECT = Path("/work/proj")


def mount(spec: str, environ: dict[str, str] | None = None) -> Mount:
    return parse_mount(spec, USER, environ or {}, PROJECT)


# -- mounts ---------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "expected"), [
    ("/data", Mount("/data", "/data")),
    ("/data:/mnt/data", Mount("/data", "/mnt/data")),
    ("/data:/mnt/data:ro", Mount("/data", "/mnt/data", read_only=True)),
    ("/data:/mnt/data:rw", Mount("/data", "/mnt/data")),
    ("~/.aws:ro", Mount("/home/ada/.aws", "/home/ada/.aws", read_only=True)),
    ("~", Mount("/home/ada", "/home/ada")),
    ("~/x:~/y", Mount("/home/ada/x", "/home/ada/y")),
    ("$HOME/a:/a", Mount("/home/ada/a", "/a")),
    ("${HOME}/a:/b/$USER/$UID/$GID", Mount("/home/ada/a", "/b/ada/1234/5678")),
    ("shared/cache:/cache", Mount("/work/proj/shared/cache", "/cache")),
    ("./rel", Mount("/work/proj/rel", "/work/proj/rel")),
    ("/a/../b/:/c/./d", Mount("/b", "/c/d")),
    ("/path with space,comma:/x", Mount("/path with space,comma", "/x")),
])
def test_mount_forms_and_expansion(spec, expected):
    assert mount(spec) == expected


def test_mount_expands_other_set_variables():
    assert mount("$DATA_DIR:/data", {"DATA_DIR": "/srv/d"}) == Mount("/srv/d", "/data")


@pytest.mark.parametrize(("spec", "message"), [
    ("/a:/b:/c", "too many ':'"),
    (":/b", "empty path"),
    ("/a:", "empty path"),
    ("/a:relative", "must be absolute"),
    ("$NOPE/x", "$NOPE is not set"),
])
def test_bad_mounts(spec, message):
    with pytest.raises(SpecError, match=message.replace("$", r"\$")):
        mount(spec)


# -- ports ----------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "expected", "docker"), [
    ("8080:80", Port("8080", "80"), "8080:80/tcp"),
    ("127.0.0.1:8080:8080", Port("8080", "8080", "127.0.0.1"), "127.0.0.1:8080:8080/tcp"),
    ("9090:9090/udp", Port("9090", "9090", "", "udp"), "9090:9090/udp"),
    ("[::1]:8080:80", Port("8080", "80", "::1"), "[::1]:8080:80/tcp"),
    ("[2001:db8::1]:1:65535/sctp", Port("1", "65535", "2001:db8::1", "sctp"),
     "[2001:db8::1]:1:65535/sctp"),
    ("0.0.0.0:08080:080", Port("8080", "80", "0.0.0.0"), "0.0.0.0:8080:80/tcp"),
])
def test_port_forms(spec, expected, docker):
    port = parse_port(spec)
    assert port == expected
    assert port.spec() == docker


@pytest.mark.parametrize(("spec", "message"), [
    ("8080", "invalid port mapping"),
    ("a:b", "invalid port mapping"),
    ("::1:8080:80", "invalid port mapping"),  # IPv6 without brackets
    ("[::zz]:8080:80", "invalid IPv6 address"),
    ("[127.0.0.1]:1:2", "invalid IPv6 address"),
    ("300.1.1.1:80:80", "invalid IP address"),
    ("0:80", "out of range"),
    ("80:70000", "out of range"),
    ("80:80/http", "unknown protocol"),
])
def test_bad_ports(spec, message):
    with pytest.raises(SpecError, match=message):
        parse_port(spec)


# -- pre_start ------------------------------------------------------------------------
def test_pre_start_string_or_list():
    assert pre_start_command("redis-server --daemonize yes") == "redis-server --daemonize yes"
    assert pre_start_command(["make deps", "  ", "./serve &"]) == "make deps && ./serve &"
    assert pre_start_command([]) is None
    assert pre_start_command("  ") is None
    assert pre_start_command(None) is None


# -- resolve: every key ---------------------------------------------------------------
def test_resolve_every_key(tmp_path):
    existing = tmp_path / "data"
    existing.mkdir()
    table = {
        "mounts": [f"{existing}:/data:ro", str(tmp_path / "missing")],
        "env": {"DEBUG": "1", "GITHUB_TOKEN": True, "QUOTED": "a 'b' \"c\" $d"},
        "ports": ["127.0.0.1:8080:80"],
        "docker_args": ["--memory=8g", "--label", "x=y z"],
        "pre_start": ["a", "b"],
        "harness_args": {"claude": ["--model", "sonnet"]},
        "skip_permissions": False,
    }
    rc = runconfig.resolve(table, user=USER, environ={}, project=tmp_path)
    assert rc.mounts == (Mount(str(existing), "/data", read_only=True),)
    assert len(rc.warnings) == 1 and "missing" in rc.warnings[0] and "skipped" in rc.warnings[0]
    assert rc.env == {"DEBUG": "1", "QUOTED": "a 'b' \"c\" $d"}
    assert rc.passthrough == ("GITHUB_TOKEN",)
    assert rc.ports == (Port("8080", "80", "127.0.0.1"),)
    assert rc.docker_args == ("--memory=8g", "--label", "x=y z")
    assert rc.pre_start == "a && b"
    assert rc.harness_args == {"claude": ("--model", "sonnet")}
    assert rc.skip_permissions is False


def test_resolve_defaults():
    rc = runconfig.resolve({}, user=USER, environ={}, project=PROJECT)
    assert rc == runconfig.RunConfig()
    assert rc.skip_permissions is True


# -- merge (SPEC 3.1) and per-file errors ---------------------------------------------
def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_merge_lists_concatenate_maps_merge_scalars_replace(tmp_path):
    glob = write(tmp_path / "g" / "config.toml", """
[run]
mounts = ["/g1"]
ports = ["1000:1000"]
docker_args = ["--cpus=2"]
env = { A = "global", B = "global" }
harness_args = { claude = ["--verbose"], codex = ["-q"] }
pre_start = "global-start"
skip_permissions = false
""")
    project = tmp_path / "p"
    write(project / "aishell.toml", """
[run]
mounts = ["/p1"]
ports = ["2000:2000"]
docker_args = ["--memory=1g"]
env = { B = "project", C = true }
harness_args = { claude = ["--model", "sonnet"] }
pre_start = ["project-a", "project-b"]
""")
    cfg = config.load(project, glob)
    rc = runconfig.from_config(cfg, USER, {}, exists=lambda _p: True)
    assert [m.source for m in rc.mounts] == ["/g1", "/p1"]
    assert [p.host_port for p in rc.ports] == ["1000", "2000"]
    assert rc.docker_args == ("--cpus=2", "--memory=1g")
    assert rc.env == {"A": "global", "B": "project"}
    assert rc.passthrough == ("C",)
    assert rc.harness_args == {"claude": ("--verbose", "--model", "sonnet"), "codex": ("-q",)}
    assert rc.pre_start == "project-a && project-b"
    assert rc.skip_permissions is False  # from global, not overridden


def test_extends_none_ignores_global(tmp_path):
    glob = write(tmp_path / "g" / "config.toml", '[run]\nmounts = ["/g1"]\n')
    project = tmp_path / "p"
    write(project / "aishell.toml", 'extends = "none"\n[run]\nmounts = ["/p1"]\n')
    rc = runconfig.from_config(config.load(project, glob), USER, {}, exists=lambda _p: True)
    assert [m.source for m in rc.mounts] == ["/p1"]


def test_bad_port_names_file_and_line_of_the_item(tmp_path):
    project = tmp_path / "p"
    path = write(project / "aishell.toml", """[run]
ports = [
  "8080:80",
  "127.0.0.1:99999:80",
]
""")
    with pytest.raises(ConfigError) as exc:
        runconfig.from_config(config.load(project, None), USER, {})
    assert str(exc.value).startswith(f"{path}:4: port 99999")
    assert "[IP:]HOST:CONTAINER" in (exc.value.hint or "")


def test_bad_mount_in_global_names_the_global_file(tmp_path):
    glob = write(tmp_path / "g" / "config.toml", '\n[run]\nmounts = ["/a:/b:/c"]\n')
    project = tmp_path / "p"
    project.mkdir()
    with pytest.raises(ConfigError) as exc:
        runconfig.from_config(config.load(project, glob), USER, {})
    assert str(exc.value).startswith(f"{glob}:3: mount '/a:/b:/c' has too many ':'")


def test_bad_env_name_is_an_error_with_line(tmp_path):
    project = tmp_path / "p"
    path = write(project / "aishell.toml", '[run]\nenv = { "1BAD" = "x" }\n')
    with pytest.raises(ConfigError) as exc:
        runconfig.from_config(config.load(project, None), USER, {})
    assert str(exc.value).startswith(f"{path}:2: [run] env: '1BAD'")


def test_unknown_run_key_suggests_nearest(tmp_path):
    project = tmp_path / "p"
    path = write(project / "aishell.toml", '[run]\nmount = ["/x"]\n')
    with pytest.raises(ConfigError) as exc:
        config.load(project, None)
    assert str(exc.value) == f"{path}:2: unknown key `mount` in [run]"
    assert exc.value.hint == "did you mean `mounts`?"
