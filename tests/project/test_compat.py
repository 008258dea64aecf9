"""The original .aishell/config.yaml: read like aishell.toml, and `aishell migrate`."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from aishell.errors import AishellError, ConfigError
from aishell.project import config, migrate
from aishell.project.context import Context
from aishell.run import config as runconfig
from aishell.run.identity import HostUser
from tests.conftest import run_aishell

USER = HostUser(uid=1000, gid=1000, name="ada", home="/home/ada")

ORIGINAL = """\
# Project settings for the agent
extends: none

# extra directories
mounts:
  - ~/.gitconfig             # git identity
  - /srv/data:/data:ro

env:
  DEBUG: "true"
  EDITOR:                    # passthrough
ports:
  - 22:22
  - "127.0.0.1:5432:5432"
docker_args: "--cpus=2 --memory=4g"
pre_start:
  - redis-server --daemonize yes
  - echo ready
harness_args:
  claude: "--verbose"
  codex: ["-q", "--model", "o3"]
gitleaks_freshness_check: false
detection:
  enabled: false
  custom_patterns:
    "*.secret": high
    "internal-*.json":
      severity: medium
      reason: internal
  allowlist:
    - path: tests/fixtures/fake.pem
      reason: test fixture
  gitleaks_freshness_days: 14
"""


def legacy_project(tmp_path: Path, text: str = ORIGINAL, where: str = ".aishell") -> Path:
    project = tmp_path / "proj"
    (project / where).mkdir(parents=True)
    (project / where / "config.yaml").write_text(text, encoding="utf-8")
    return project


def test_original_config_is_read_in_the_toml_layout(tmp_path):
    project = legacy_project(tmp_path)
    cfg = config.load(project, None)
    assert cfg.legacy == project / ".aishell" / "config.yaml"
    assert cfg.data["extends"] == "none"
    run = cfg.table("run")
    assert run["mounts"] == ["~/.gitconfig", "/srv/data:/data:ro"]
    assert run["env"] == {"DEBUG": "true", "EDITOR": True}
    assert run["ports"] == ["22:22", "127.0.0.1:5432:5432"]  # not YAML 1.1's 1342
    assert run["docker_args"] == ["--cpus=2", "--memory=4g"]
    assert run["pre_start"] == ["redis-server --daemonize yes", "echo ready"]
    assert run["harness_args"] == {"claude": ["--verbose"], "codex": ["-q", "--model", "o3"]}
    assert cfg.table("security") == {
        "detection": False,
        "custom_patterns": {"*.secret": "high", "internal-*.json": "medium"},
        "allowlist": [{"path": "tests/fixtures/fake.pem", "reason": "test fixture"}],
        "gitleaks_freshness_days": 14,
    }
    rc = runconfig.from_config(cfg, USER, {}, exists=lambda _p: True)
    assert rc.pre_start == "redis-server --daemonize yes && echo ready"
    assert rc.passthrough == ("EDITOR",)


def test_env_list_form_and_sandbox_dir(tmp_path):
    project = legacy_project(tmp_path, "env:\n  - A=1\n  - B\n", where=".sandbox")
    assert config.load(project, None).table("run")["env"] == {"A": "1", "B": True}


def test_global_yaml_stands_in_for_a_missing_global_toml(tmp_path):
    project = legacy_project(tmp_path, "mounts: [/p]\n")
    legacy_global = tmp_path / "home" / ".aishell" / "config.yaml"
    legacy_global.parent.mkdir(parents=True)
    legacy_global.write_text("extends: none\nmounts: [/g]\n", encoding="utf-8")
    cfg = config.load(project, tmp_path / "absent.toml", legacy_global=legacy_global)
    assert cfg.table("run")["mounts"] == ["/g", "/p"]


def test_find_project_finds_a_legacy_project_from_a_subdirectory(tmp_path):
    project = legacy_project(tmp_path, "mounts: []\n")
    (project / "src" / "deep").mkdir(parents=True)
    assert config.find_project(project / "src" / "deep") == project.resolve()


@pytest.mark.parametrize(("text", "line", "message"), [
    ("mounts:\n  - /a\n  bad: [\n", 3, "invalid YAML"),
    ("mounts: [/a\nports: []\n", 2, "invalid YAML"),
    ("mount: [/a]\n", 1, "unknown key `mount`"),
    ("\n\nports: 8080\n", 3, None),  # a scalar port list is fine (one item)…
    ("ports:\n  - 80\n", 2, "invalid port mapping '80'"),  # …but must be a mapping
    ("detection:\n  enabled: maybe\n", 2, "detection.enabled must be true or false"),
    ("extends: sometimes\n", 1, 'extends must be "global" or "none"'),
    ("harness_args:\n  claude: {a: 1}\n", 2, "harness_args.claude must be a list"),
])
def test_yaml_errors_are_one_line_with_file_and_line(tmp_path, text, line, message):
    project = legacy_project(tmp_path, text)
    path = project / ".aishell" / "config.yaml"
    if message is None:
        config.load(project, None)
        return
    with pytest.raises(ConfigError) as exc:
        runconfig.from_config(config.load(project, None), USER, {})
    assert str(exc.value).startswith(f"{path}:{line}: ")
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_unknown_key_hint_names_the_nearest(tmp_path):
    project = legacy_project(tmp_path, "pre-start: x\n")
    with pytest.raises(ConfigError) as exc:
        config.load(project, None)
    assert exc.value.hint == "did you mean `pre_start`?"


# -- migrate --------------------------------------------------------------------------
def test_migrate_writes_equivalent_toml_and_keeps_comments(tmp_path):
    project = legacy_project(tmp_path)
    before = config.load(project, None).data
    done = migrate.migrate(Context.create(str(project)))
    assert [m.target for m in done] == [project / "aishell.toml"]
    text = (project / "aishell.toml").read_text()
    assert tomllib.loads(text)  # valid TOML
    after = config.load(project, None)
    assert after.legacy is None and after.data == before
    assert "# Project settings for the agent" in text
    assert "# extra directories" in text
    assert '"~/.gitconfig", # git identity' in text
    assert "# EDITOR: passthrough" in text
    assert "gitleaks_freshness_check: false (original)" in text
    assert (project / ".aishell" / "config.yaml").exists()  # left in place


def test_migrate_refuses_to_overwrite_and_dry_run_writes_nothing(tmp_path):
    project = legacy_project(tmp_path, "mounts: [/a]\n")
    (project / "aishell.toml").write_text("# mine\n")
    ctx = Context.create(str(project))
    with pytest.raises(AishellError, match="exists already"):
        migrate.migrate(ctx)
    done = migrate.migrate(ctx, dry_run=True)
    assert 'mounts = [\n    "/a",\n]' in done[0].text
    assert (project / "aishell.toml").read_text() == "# mine\n"
    migrate.migrate(ctx, force=True)
    assert tomllib.loads((project / "aishell.toml").read_text())["run"]["mounts"] == ["/a"]


def test_migrate_converts_the_global_yaml_too(tmp_path, private_state):
    project = legacy_project(tmp_path, "mounts: [/a]\n")
    ctx = Context.create(str(project))
    assert ctx.paths.legacy_global is not None
    ctx.paths.legacy_global.parent.mkdir(parents=True)
    ctx.paths.legacy_global.write_text("# everywhere\nenv:\n  EDITOR:\n", encoding="utf-8")
    done = migrate.migrate(ctx)
    assert [m.target for m in done] == [project / "aishell.toml", ctx.paths.global_config]
    glob = ctx.paths.global_config.read_text()
    assert "# everywhere" in glob and tomllib.loads(glob) == {"run": {"env": {"EDITOR": True}}}


def test_migrate_without_an_original_config_is_an_error(tmp_path):
    with pytest.raises(AishellError, match="nothing to migrate"):
        migrate.migrate(Context.create(str(tmp_path)))


def test_cli_says_once_that_migrate_converts_it(tmp_path):
    project = legacy_project(tmp_path, "ports: ['1:2']\nmounts: [/a\n")
    r = run_aishell("exec", "--", "true", cwd=project)
    assert r.returncode == 1
    assert r.stderr.startswith(f"error: {project}/.aishell/config.yaml:3: invalid YAML: "
                               "expected ',' or ']', but got '<stream end>' "
                               "(while parsing a flow sequence on line 2)")
    assert len(r.stderr.splitlines()) == 1
    r = run_aishell("migrate", "--dry-run", cwd=project)
    assert r.returncode == 1 and "invalid YAML" in r.stderr
