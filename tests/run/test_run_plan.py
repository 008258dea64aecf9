"""The launch plan: harness command, catalog defaults, names, routing of the command line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from aishell import cli
from aishell.errors import AishellError, UsageError
from aishell.lock import catalog
from aishell.project.context import Context
from aishell.request import ContainerRequest, Mount, cli_args
from aishell.run import launch as run
from aishell.run import plan as run_plan
from aishell.run.identity import HostUser
from aishell.run.plan import RunOptions
from aishell.run.sandbox import container_name, harness_command

USER = HostUser(uid=1234, gid=5678, name="ada", home="/home/ada")


def project_with(tmp_path: Path, toml: str = "") -> Path:
    project = tmp_path / "proj"
    project.mkdir(exist_ok=True)
    if toml:
        (project / "aishell.toml").write_text(toml, encoding="utf-8")
    return project


def make_plan(project: Path, opts: RunOptions, environ: dict[str, str] | None = None,
              **kw) -> run_plan.Plan:
    ctx = Context.create(str(project))
    return run_plan.plan(ctx, opts, image="img:1", env_volume=kw.pop("env_volume", None), user=USER,
                    environ=environ or {}, tty=kw.pop("tty", False), **kw)


# -- harness command ------------------------------------------------------------------
def test_claude_command_order_defaults_then_config_then_cli(tmp_path):
    project = project_with(tmp_path, '[run]\nharness_args = { claude = ["--model", "sonnet"] }\n')
    p = make_plan(project, RunOptions("claude", ("--name", "x", "--json", "--", "-p")))
    assert p.request.command == ("claude", "--dangerously-skip-permissions", "--model", "sonnet",
                                 "--name", "x", "--json", "--", "-p")


def test_skip_permissions_false_drops_the_flag(tmp_path):
    project = project_with(tmp_path, "[run]\nskip_permissions = false\n")
    p = make_plan(project, RunOptions("claude", ("--version",)))
    assert p.request.command == ("claude", "--version")


def test_codex_gets_its_container_settings_as_config_overrides():
    argv = harness_command(catalog.CATALOG["codex"], cli=["exec", "hi"])
    assert argv == ["codex", "-c", "check_for_update_on_startup=false",
                    "-c", 'sandbox_mode="danger-full-access"', "exec", "hi"]


def test_other_harness_args_do_not_leak(tmp_path):
    project = project_with(tmp_path, '[run]\nharness_args = { codex = ["-q"] }\n')
    p = make_plan(project, RunOptions("gemini", ("--version",)))
    assert p.request.command == ("gemini", "--yolo", "--version")


def test_manifest_harness_uses_its_declared_bin(tmp_path):
    project = project_with(tmp_path, '[harnesses]\nmytool = { npm = "@acme/agent", '
                                     'version = "~1.4", bin = ["acme"] }\n')
    p = make_plan(project, RunOptions("mytool", ("x",)))
    assert p.request.command == ("acme", "x")
    assert p.request.labels["dev.aishell.harness"] == "mytool"


def test_unknown_harness_suggests_the_nearest(tmp_path):
    with pytest.raises(AishellError) as exc:
        make_plan(project_with(tmp_path), RunOptions("cladue"))
    assert exc.value.message == "unknown harness `cladue`"
    assert exc.value.hint == "did you mean `claude`?"


# -- catalog wiring -------------------------------------------------------------------
def test_config_dirs_mounted_rw_at_same_path_and_prepared(tmp_path):
    p = make_plan(project_with(tmp_path), RunOptions("claude"))
    assert Mount("/home/ada/.claude", "/home/ada/.claude") in p.request.mounts
    assert Mount("/home/ada/.claude.json", "/home/ada/.claude.json") in p.request.mounts
    assert p.prepare_dirs == ("/home/ada/.claude",)
    assert p.prepare_files == {"/home/ada/.claude.json": "{}\n"}


def test_prepare_host_creates_dirs_and_seeds_without_overwriting(tmp_path):
    existing = tmp_path / "h" / ".claude.json"
    existing.parent.mkdir()
    existing.write_text('{"keep": 1}')
    plan = run_plan.Plan(request=None, name=None, harness=None,  # type: ignore[arg-type]
                    prepare_files={str(existing): "{}\n", str(tmp_path / "h" / "new.json"): "{}\n"},
                    prepare_dirs=(str(tmp_path / "h" / ".config" / "opencode"),))
    run.prepare_host(plan)
    assert existing.read_text() == '{"keep": 1}'
    assert (tmp_path / "h" / "new.json").read_text() == "{}\n"
    assert (tmp_path / "h" / ".config" / "opencode").is_dir()


def test_api_keys_pass_by_name_only_in_env_mode(tmp_path):
    secret = "sk-ant-SECRET-VALUE-123"
    p = make_plan(project_with(tmp_path, '[credentials]\nmode = "env"\n'), RunOptions("claude"),
                  environ={"ANTHROPIC_API_KEY": secret})
    argv = cli_args(p.request)
    assert "ANTHROPIC_API_KEY" in argv and "CLAUDE_CODE_OAUTH_TOKEN" in argv
    assert not any(secret in a for a in argv)
    assert "ANTHROPIC_API_KEY" not in p.request.process_env()  # inherited, not copied


@pytest.mark.parametrize(("name", "var", "value"), [
    ("claude", "DISABLE_AUTOUPDATER", "1"),
    ("opencode", "OPENCODE_DISABLE_AUTOUPDATE", "1"),
    ("gemini", "GEMINI_SANDBOX", "false"),
    ("qwen", "QWEN_SANDBOX", "false"),
])
def test_autoupdate_and_inner_sandbox_off(tmp_path, name, var, value):
    p = make_plan(project_with(tmp_path), RunOptions(name))
    assert p.request.env[var] == value
    assert p.request.env["IS_SANDBOX"] == "1"


def test_gemini_system_settings_turn_off_autoupdate_and_sandbox():
    import json

    files = dict(catalog.CATALOG["gemini"].system_files)
    data = json.loads(files["/etc/gemini-cli/settings.json"])
    assert data["general"]["enableAutoUpdate"] is False
    assert data["tools"]["sandbox"] is False


def test_system_files_are_written_once_and_mounted_read_only(tmp_path):
    ctx = Context.create(str(project_with(tmp_path)))
    mounts = run.system_file_mounts(ctx, catalog.CATALOG["gemini"])
    assert all(m.read_only for m in mounts)
    assert [m.target for m in mounts] == ["/etc/gemini-cli/settings.json",
                                          "/etc/gemini-cli/system-defaults.json"]
    host = Path(mounts[0].source)
    before = host.stat().st_mtime_ns
    run.system_file_mounts(ctx, catalog.CATALOG["gemini"])
    assert host.stat().st_mtime_ns == before


# -- names, detach, one-off additions -------------------------------------------------
def test_default_names_and_chosen_name(tmp_path):
    project = project_with(tmp_path)
    assert make_plan(project, RunOptions("claude")).request.name == container_name(project, "claude")
    assert make_plan(project, RunOptions()).request.name == container_name(project, "shell")
    assert make_plan(project, RunOptions("codex", name="review")).request.name == (
        container_name(project, "review"))
    assert container_name(project, "x").startswith("aishell-") and len(
        container_name(project, "x").split("-")[1]) == 8


@pytest.mark.parametrize("bad", ["-x", "a b", "a/b", "", "x" * 70])
def test_invalid_names_are_usage_errors(tmp_path, bad):
    with pytest.raises(UsageError):
        make_plan(project_with(tmp_path), RunOptions("claude", name=bad or "."))


def test_detach_labels_env_and_no_tty(tmp_path):
    project = project_with(tmp_path, '[run]\npre_start = "redis-server"\n')
    req = make_plan(project, RunOptions("claude", detach=True), tty=True).request
    assert req.detach and not req.tty and not req.interactive
    assert req.env["AISHELL_DETACH"] == "1"
    assert req.labels["dev.aishell.detach"] == "1"
    assert req.labels["dev.aishell.pre-start"] == "1"
    argv = cli_args(req)
    assert "--detach" in argv and "--tty" not in argv


def test_one_off_env_volume_and_port(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    opts = RunOptions("claude", env=("DEBUG=1 2", "EDITOR"), volumes=(f"{data}:/data:ro",),
                      ports=("127.0.0.1:8080:80",))
    req = make_plan(project_with(tmp_path), opts).request
    assert req.env["DEBUG"] == "1 2" and "EDITOR" in req.env_passthrough
    assert Mount(str(data), "/data", read_only=True) in req.mounts
    assert "127.0.0.1:8080:80/tcp" in cli_args(req)
    assert not any("1 2" in a for a in cli_args(req))  # values never in argv


@pytest.mark.parametrize(("opts", "message"), [
    (RunOptions(env=("1X=2",)), "not a valid variable name"),
    (RunOptions(volumes=("/no/such/dir-xyz:/x",)), "does not exist"),
    (RunOptions(ports=("80",)), "invalid port mapping"),
])
def test_bad_one_off_additions(tmp_path, opts, message):
    with pytest.raises(UsageError, match=message):
        make_plan(project_with(tmp_path), opts)


def test_exec_is_one_shot_without_name_ports_or_pre_start(tmp_path):
    project = project_with(tmp_path, '[run]\nports = ["8080:80"]\npre_start = "x"\n'
                                     'env = { A = "1" }\n')
    req = make_plan(project, RunOptions(), one_shot=True, command=["true"]).request
    assert req.name is None and req.ports == () and "AISHELL_PRE_START" not in req.env
    assert req.command == ("true",) and req.env["A"] == "1"


def test_config_docker_args_come_last_before_the_image(tmp_path):
    project = project_with(tmp_path, '[run]\ndocker_args = ["--memory=1g", "--label", "a=b c"]\n')
    argv = cli_args(make_plan(project, RunOptions("claude")).request)
    i = argv.index("img:1")
    assert argv[i - 3:i] == ["--memory=1g", "--label", "a=b c"]


def test_env_volume_mounted_read_only_with_label(tmp_path):
    req = make_plan(project_with(tmp_path), RunOptions("claude"),
                    env_volume="aishell-env-abcdef").request
    tools = [m for m in req.mounts if m.target == "/tools"]
    assert tools and tools[0].read_only and tools[0].no_copy
    assert req.labels["dev.aishell.env-volume"] == "aishell-env-abcdef"


# -- worktrees ------------------------------------------------------------------------
def test_worktree_mounts_the_common_git_dir(tmp_path):
    main = tmp_path / "main"
    subprocess.run(["git", "init", "-q", str(main)], check=True)
    subprocess.run(["git", "-C", str(main), "-c", "user.name=a", "-c", "user.email=a@b",
                    "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    wt = tmp_path / "wt"
    subprocess.run(["git", "-C", str(main), "worktree", "add", "-q", str(wt)], check=True)
    req = make_plan(wt, RunOptions()).request
    sources = [m.source for m in req.mounts]
    assert str((main / ".git").resolve()) in sources
    # the worktree's own git dir lies inside the common one: not mounted twice
    assert not any(s.endswith("/worktrees/wt") for s in sources)


def test_plain_repository_mounts_no_extra_git_dir(tmp_path):
    project = project_with(tmp_path)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    req = make_plan(project, RunOptions()).request
    assert [m.source for m in req.mounts if ".git" in m.source] == []


# -- command-line routing -------------------------------------------------------------
def test_shortcut_passes_everything_after_the_harness_untouched():
    r = cli.route(["--detach", "--name", "n", "claude", "--name", "x", "--json", "-v"])
    assert r.parse == ["run", "--detach", "--name", "n"]
    assert r.harness == "claude"
    assert r.harness_args == ["--name", "x", "--json", "-v"]


def test_run_with_double_dash_strips_one():
    r = cli.route(["run", "-e", "A=1", "codex", "--", "--version"])
    assert r.parse == ["run", "-e", "A=1"]
    assert (r.harness, r.harness_args) == ("codex", ["--version"])


def test_run_without_harness_is_a_shell():
    r = cli.route(["run", "--detach"])
    assert r.harness is None and r.parse == ["run", "--detach"]


def test_other_commands_are_left_to_argparse():
    assert cli.route(["-v", "ps", "--json"]).parse == ["-v", "ps", "--json"]
    assert cli.route([]).parse == []


def test_unknown_word_suggests_a_harness_or_command():
    with pytest.raises(UsageError) as exc:
        cli.route(["cluade"])
    assert exc.value.hint == "did you mean `claude`?"
    with pytest.raises(UsageError) as exc:
        cli.route(["atach", "x"])
    assert exc.value.hint == "did you mean `attach`?"


def test_manifest_harness_is_a_shortcut_too(tmp_path):
    project = project_with(tmp_path, '[harnesses]\nmytool = "npm:@acme/agent@1"\n')
    r = cli.route(["--project", str(project), "mytool", "--help"])
    assert (r.harness, r.harness_args) == ("mytool", ["--help"])


def test_parsed_run_options_reach_run_options(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr("aishell.cli.run._launch", lambda ctx, opts: seen.setdefault("o", opts) and 0)
    assert cli.main(["--project", str(project_with(tmp_path)), "-d", "--name", "n", "-e", "A",
                     "-p", "1:2", "codex", "--name", "inner"]) == 0
    opts = seen["o"]
    assert (opts.harness, opts.name, opts.detach, opts.env, opts.ports, opts.args) == (
        "codex", "n", True, ("A",), ("1:2",), ("--name", "inner"))


# -- notices and rendering ------------------------------------------------------------
def test_inner_sandbox_note_is_said_once_per_machine(tmp_path, capsys):
    ctx = Context.create(str(project_with(tmp_path)))
    run.say_once(ctx, "inner-sandbox-codex", "codex runs with danger-full-access")
    run.say_once(ctx, "inner-sandbox-codex", "codex runs with danger-full-access")
    assert capsys.readouterr().err == "note: codex runs with danger-full-access\n"


def test_ps_json_contract(tmp_path, capsys):
    import json

    from aishell.cli.run import print_sandboxes
    from aishell.run.sandboxes import Sandbox

    ctx = Context.create(str(project_with(tmp_path)), json=True)
    box = Sandbox(name="claude", container="aishell-12345678-claude", project="/p",
                  harness="claude", env_id="0123456789ab", status="running",
                  uptime_seconds=75, pre_start="ready", detached=True)
    print_sandboxes(ctx, [box], every_project=False)
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"schema": "aishell.ps", "version": 1, "sandboxes": [{
        "name": "claude", "container": "aishell-12345678-claude", "project": "/p",
        "harness": "claude", "env_id": "0123456789ab", "status": "running",
        "uptime_seconds": 75, "pre_start": "ready", "detached": True, "network": "open",
        "denied": None, "denied_hosts": [], "gateways": [], "credentials": []}]}


def test_ps_table_for_people(tmp_path, capsys):
    from aishell.cli.run import print_sandboxes, uptime
    from aishell.run.sandboxes import Sandbox

    ctx = Context.create(str(project_with(tmp_path)))
    box = Sandbox("shell", "c", "/p", None, None, "exited", None, None, False)
    proxied = Sandbox("box", "d", "/p", "claude", None, "running", 5, None, True,
                      network="allowlist", denied=3, denied_hosts=("pypi.org", "example.com"))
    print_sandboxes(ctx, [box, proxied], every_project=False)
    assert capsys.readouterr().out.splitlines() == [
        "NAME   HARNESS  ENV  STATUS   UPTIME  PRE-START  NETWORK",
        "shell  shell    -    exited   -       -          open",
        "box    claude   -    running  5s      -          allowlist, 3 denied (pypi.org, example.com)",
    ]
    assert [uptime(s) for s in (5, 125, 3700, 90000)] == ["5s", "2m", "1h01m", "1d1h"]


def test_commands_added_by_other_modules_are_not_harnesses():
    parser = cli.build_parser()
    assert set(cli.COMMANDS) <= set(cli.command_names(parser))
    r = cli.route(["lock", "--check"], [*cli.COMMANDS, "lock"])
    assert r.parse == ["lock", "--check"] and r.harness is None


def test_store_lock_is_held_shared_from_env_check_to_creation(tmp_path, monkeypatch):
    from aishell.store import storelock

    ctx = Context.create(str(project_with(tmp_path)))
    seen = []

    def gc_can_run() -> bool:
        try:
            with storelock.exclusive(ctx.paths, timeout=0.05):
                return True
        except storelock.StoreLockTimeout:
            return False

    def fake_prepare(ctx_, opts, **kw):
        seen.append(("prepare", gc_can_run()))
        return run_plan.Plan(request=ContainerRequest(image="img:1", command=("true",)),
                             name="x", harness=None)

    def fake_create(ctx_, p):
        seen.append(("create", gc_can_run()))

    monkeypatch.setattr(run, "prepare", fake_prepare)
    monkeypatch.setattr(run, "create", fake_create)
    monkeypatch.setattr(run, "_finish", lambda ctx_, p, created: seen.append(
        ("attach", gc_can_run())) or 0)
    assert run.run(ctx, RunOptions()) == 0
    assert seen == [("prepare", False), ("create", False), ("attach", True)]
