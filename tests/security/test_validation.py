"""Dangerous engine arguments, mounts and ports: warned by default, refused in strict mode."""

from __future__ import annotations

import pytest

from aishell.errors import AishellError
from aishell.security import preflight as security
from aishell.security import validation
from tests.fixtures_security import context

HOME = "/home/alice"

# (arguments as written, a word the warning must contain)
DANGEROUS_ARGS = [
    (["--privileged"], "every capability"),
    (["--privileged=true"], "every capability"),
    (["--cap-add=ALL"], "ALL"),
    (["--cap-add", "ALL"], "ALL"),
    (["--cap-add ALL"], "ALL"),
    (["--cap-add=all"], "ALL"),
    (["--cap-add=SYS_ADMIN"], "SYS_ADMIN"),
    (["--cap-add", "CAP_SYS_ADMIN"], "SYS_ADMIN"),
    (["--cap-add=NET_ADMIN"], "NET_ADMIN"),
    (["--cap-add=CHOWN,NET_ADMIN"], "NET_ADMIN"),
    (["--pid=host"], "process table"),
    (["--pid", "host"], "process table"),
    (["--network=host"], "network stack"),
    (["--network", "host"], "network stack"),
    (["--net=host"], "network stack"),
    (["--ipc=host"], "IPC"),
    (["--userns=host"], "root inside is root"),
    (["--security-opt", "seccomp=unconfined"], "seccomp"),
    (["--security-opt=seccomp:unconfined"], "seccomp"),
    (["--security-opt", "apparmor=unconfined"], "AppArmor"),
    (["--security-opt=apparmor:unconfined"], "AppArmor"),
    (["-v", "/var/run/docker.sock:/var/run/docker.sock"], "engine socket"),
    (["--volume=/run/docker.sock:/sock"], "engine socket"),
    (["-v/var/run/docker.sock:/d.sock"], "engine socket"),
    (["--mount", "type=bind,source=/var/run/docker.sock,target=/d.sock"], "engine socket"),
    (["--mount=type=bind,src=/run/user/1000/podman/podman.sock,dst=/s"], "engine socket"),
    (["--device=/dev/kvm"], "host device"),
    (["--device", "/dev/sda"], "host device"),
]
SAFE_ARGS = [["--memory=8g"], ["--cpus", "2"], ["--privileged=false"], ["--cap-add=CHOWN"],
             ["--network=none"], ["--network", "mynet"], ["--security-opt", "label=type:x"],
             ["-e", "DEBUG=1"], ["-v", "mydata:/data"], ["--pid=container:abc"],
             ["-p", "127.0.0.1:8080:8080"]]

# (mount as written, a word the warning must contain)
DANGEROUS_MOUNTS = [
    ("/", "whole filesystem"),
    ("/:/host:ro", "whole filesystem"),
    ("/etc", "system configuration"),
    ("/etc:/host-etc:ro", "system configuration"),
    ("/etc/ssh:/x", "read-write"),
    ("/var/run/docker.sock:/var/run/docker.sock", "engine socket"),
    ("~/.ssh", ".ssh"),
    ("~/.ssh:/root/.ssh:ro", ".ssh"),
    ("~/.ssh/id_ed25519:/k:ro", ".ssh"),
    ("~/.aws:ro", ".aws"),
    ("~/.gnupg:/g", ".gnupg"),
    ("~/.kube:/k", ".kube"),
    ("~/.azure:/a", ".azure"),
    ("~/.password-store:/p", ".password-store"),
    ("~/.config/gcloud:/g", "gcloud"),
    ("~/.config:/c", "gcloud"),  # contains it
    ("~", "whole home directory"),
    ("~/:/h", "whole home directory"),
    ("/home/alice:/h", "whole home directory"),
    ("/home/alice/./:/h", "whole home directory"),
    ("/home/alice/code/../.aws:/a", ".aws"),
    ("/home:/h", "whole home directory"),
]
SAFE_MOUNTS = ["/data/shared:/data", "~/code/project:/p", "~/.cache/pip:/pip",
               "/etc/localtime:/etc/localtime:ro", "named-volume:/data", "/tmp/x:/x"]


@pytest.mark.parametrize(("args", "word"), DANGEROUS_ARGS, ids=str)
def test_each_dangerous_argument_is_warned_with_its_risk(args, word):
    (risk,) = validation.check_docker_args(args, home=HOME)
    assert word in risk.reason
    assert risk.item.replace(" ", "") == "".join(args).replace(" ", "")


@pytest.mark.parametrize(("args", "word"), DANGEROUS_ARGS, ids=str)
def test_each_dangerous_argument_is_refused_in_strict_mode(args, word):
    risks = validation.check_docker_args(args, home=HOME)
    with pytest.raises(AishellError, match="strict") as info:
        validation.enforce(risks, strict=True)
    assert word in info.value.message
    assert info.value.hint


@pytest.mark.parametrize("args", SAFE_ARGS, ids=str)
def test_safe_arguments_pass(args):
    assert validation.check_docker_args(args, home=HOME) == []


@pytest.mark.parametrize(("mount", "word"), DANGEROUS_MOUNTS, ids=str)
def test_each_dangerous_mount_is_warned(mount, word):
    (risk,) = validation.check_mounts([mount], home=HOME)
    assert word in risk.reason
    assert risk.item == mount
    with pytest.raises(AishellError, match="strict"):
        validation.enforce([risk], strict=True)


@pytest.mark.parametrize("mount", SAFE_MOUNTS)
def test_safe_mounts_pass(mount):
    assert validation.check_mounts([mount], home=HOME) == []


def test_env_vars_in_mounts_are_expanded(monkeypatch):
    monkeypatch.setenv("SECRETS_DIR", f"{HOME}/.gnupg")
    (risk,) = validation.check_mounts(["$SECRETS_DIR:/g"], home=HOME)
    assert ".gnupg" in risk.reason


def test_a_symlink_to_a_secret_dir_is_caught(tmp_path):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (tmp_path / "innocent").symlink_to(home / ".ssh")
    (risk,) = validation.check_mounts([f"{tmp_path}/innocent:/x"], home=str(home))
    assert ".ssh" in risk.reason


def test_mounts_inside_docker_args_are_checked():
    (risk,) = validation.check_docker_args(["-v", "~/.aws:/aws:ro"], home=HOME)
    assert ".aws" in risk.reason


@pytest.mark.parametrize("port", ["8080:8080", "8080", "0.0.0.0:80:80", "[::]:80:80/udp"])
def test_ports_on_all_interfaces_are_warned(port):
    (risk,) = validation.check_ports([port])
    assert "all host interfaces" in risk.reason


@pytest.mark.parametrize("port", ["127.0.0.1:8080:8080", "[::1]:80:80", "127.0.0.1::80"])
def test_local_ports_pass(port):
    assert validation.check_ports([port]) == []


def test_not_strict_returns_warnings():
    risks = validation.check_docker_args(["--privileged", "--pid=host"])
    assert len(validation.enforce(risks, strict=False)) == 2
    assert validation.enforce([], strict=True) == []


# -- through preflight: config values and one-off additions ---------------------------

PRIVILEGED_TOML = '[run]\ndocker_args = ["--memory=8g", "--privileged"]\n'


def test_privileged_in_config_warns_naming_file_and_line(tmp_path):
    ctx = context(tmp_path / "p", PRIVILEGED_TOML)
    warnings = security.preflight(ctx, interactive=False, unsafe=False)
    (risk,) = [w for w in warnings if "--privileged" in w]
    assert f"{ctx.project / 'aishell.toml'}:2 [run] docker_args: --privileged" in risk


def test_privileged_in_config_is_refused_in_strict_mode(tmp_path):
    ctx = context(tmp_path / "p", PRIVILEGED_TOML + "[security]\nstrict = true\n")
    with pytest.raises(AishellError, match=r"strict.*\n.*--privileged"):
        security.preflight(ctx, interactive=False, unsafe=False)


def test_config_mounts_and_ports_are_checked(tmp_path):
    ctx = context(tmp_path / "p", '[run]\nmounts = ["/:/host"]\nports = ["8080:8080"]\n')
    warnings = security.preflight(ctx, interactive=False, unsafe=False)
    assert any("[run] mounts: /:/host" in w for w in warnings)
    assert any("[run] ports: 8080:8080" in w for w in warnings)


def test_one_off_arguments_are_checked_too(tmp_path):
    ctx = context(tmp_path / "p")
    warnings = security.preflight(ctx, interactive=False, unsafe=True,
                                  docker_args=["--cap-add", "SYS_ADMIN"],
                                  mounts=["/var/run/docker.sock:/s"], ports=["9000:9000"])
    risky = [w for w in warnings if w.startswith("command line:")]
    assert len(risky) == 3


def test_one_off_arguments_refused_in_strict_mode(tmp_path):
    ctx = context(tmp_path / "p", "[security]\nstrict = true\n")
    with pytest.raises(AishellError, match=r"docker\.sock"):
        security.preflight(ctx, interactive=False, unsafe=True,
                           mounts=["/var/run/docker.sock:/var/run/docker.sock"])


def test_merged_lists_are_not_checked_twice(tmp_path):
    ctx = context(tmp_path / "p", PRIVILEGED_TOML)
    warnings = security.preflight(ctx, interactive=False, unsafe=False,
                                  docker_args=["--memory=8g", "--privileged"])
    assert sum("--privileged" in w for w in warnings) == 1


# -- [network] modes: a --network in docker_args would undo them ----------------------
@pytest.mark.parametrize("args", [["--network", "bridge"], ["--network=mynet"], ["--net", "x"],
                                  ["--network bridge"]])
def test_a_network_override_is_flagged_in_allowlist_mode(args):
    risks = validation.check_docker_args(args, home=HOME, network_mode="allowlist")
    assert len(risks) == 1
    assert "allows it only its egress socket" in risks[0].reason
    assert validation.check_docker_args(args, home=HOME) == []  # open mode: their choice
    none = validation.check_docker_args(args, home=HOME, network_mode="none")
    assert [r.reason for r in none] == [validation.NETWORK_OVERRIDE["none"]]


def test_a_network_override_warns_with_its_line_and_strict_refuses(tmp_path):
    toml = ('[network]\nmode = "allowlist"\n[run]\n'
            'docker_args = ["--network", "bridge"]\n')
    ctx = context(tmp_path / "proj", toml)
    warnings = security.preflight(ctx, interactive=False, unsafe=True)
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{ctx.project / 'aishell.toml'}:4 [run] docker_args: "
                                  "--network bridge gives the sandbox a network although")
    strict = context(tmp_path / "strict", toml + "[security]\nstrict = true\n")
    with pytest.raises(AishellError, match="refused by \\[security\\] strict = true"):
        security.preflight(strict, interactive=False, unsafe=True)
