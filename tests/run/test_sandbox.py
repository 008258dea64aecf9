from __future__ import annotations

from pathlib import Path

from aishell.certs import CONTAINER_PATH
from aishell.request import cli_args
from aishell.run.identity import GitIdentity, HostUser
from aishell.run.sandbox import SandboxSpec, build_request, container_name, project_hash

USER = HostUser(uid=1234, gid=5678, name="ada", home="/home/ada")


def spec(**kw):
    base = {"image": "aishell-foundation:x", "project": Path("/home/ada/my proj"), "user": USER,
                "git": GitIdentity("Ada L", "ada@example.org"), "command": ("bash", "-l")}
    base.update(kw)
    return SandboxSpec(**base)


def test_project_mounted_at_its_real_path_and_is_workdir():
    req = build_request(spec())
    assert req.workdir == "/home/ada/my proj"
    assert req.mounts[0].source == req.mounts[0].target == "/home/ada/my proj"
    assert not req.mounts[0].read_only


def test_host_home_is_never_mounted():
    req = build_request(spec())
    assert all(m.source != "/home/ada" and m.target != "/home/ada" for m in req.mounts)


def test_user_identity_goes_to_the_entrypoint():
    env = build_request(spec()).env
    assert env["AISHELL_UID"] == "1234"
    assert env["AISHELL_GID"] == "5678"
    assert env["AISHELL_USER"] == "ada"
    assert env["AISHELL_HOME"] == "/home/ada"
    assert env["AISHELL_PROJECT"] == "/home/ada/my proj"


def test_git_identity_is_passed_as_author_and_committer():
    env = build_request(spec()).env
    assert env["GIT_AUTHOR_NAME"] == env["GIT_COMMITTER_NAME"] == "Ada L"
    assert env["GIT_AUTHOR_EMAIL"] == env["GIT_COMMITTER_EMAIL"] == "ada@example.org"


def test_missing_git_identity_sets_nothing():
    env = build_request(spec(git=GitIdentity(None, None))).env
    assert not any(k.startswith(("GIT_", "AISHELL_GIT")) for k in env)


def test_ca_bundle_is_mounted_read_only_and_announced():
    req = build_request(spec(ca_bundle=Path("/etc/ssl/certs/ca-certificates.crt")))
    ca = [m for m in req.mounts if m.target == CONTAINER_PATH]
    assert ca and ca[0].read_only
    assert req.env["NODE_EXTRA_CA_CERTS"] == CONTAINER_PATH
    assert req.env["SSL_CERT_FILE"] == CONTAINER_PATH


def test_env_volume_is_read_only_nocopy_at_tools():
    req = build_request(spec(env_volume="aishell-env-abc"))
    tools = [m for m in req.mounts if m.target == "/tools"]
    assert tools[0].kind == "volume" and tools[0].read_only and tools[0].no_copy


def test_terminal_variables_pass_only_when_set():
    req = build_request(spec(host_env={"TERM": "xterm-kitty", "COLORTERM": "",
                                       "LANG": "de_DE.UTF-8"}))
    assert req.env["TERM"] == "xterm-kitty"
    assert "COLORTERM" not in req.env
    # the host locale is usually not generated in the image: always C.UTF-8 inside
    assert req.env["LANG"] == req.env["LC_ALL"] == "C.UTF-8"


def test_secrets_are_passthrough_names_not_values():
    req = build_request(spec(passthrough=("ANTHROPIC_API_KEY",)))
    argv = cli_args(req)
    assert "ANTHROPIC_API_KEY" in argv
    assert "ANTHROPIC_API_KEY" not in req.process_env()


def test_labels_mark_the_container_as_aishells():
    labels = build_request(spec(name="claude", harness="claude")).labels
    assert labels["dev.aishell.managed"] == "1"
    assert labels["dev.aishell.kind"] == "sandbox"
    assert labels["dev.aishell.project"] == "/home/ada/my proj"


def test_container_name_uses_an_8_char_project_hash():
    name = container_name(Path("/p"), "claude")
    assert name == f"aishell-{project_hash(Path('/p'))}-claude"
    assert len(project_hash(Path("/p"))) == 8
    assert project_hash(Path("/p")) != project_hash(Path("/q"))
