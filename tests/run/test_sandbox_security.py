"""Hardening defaults, checked from inside real containers of the foundation image."""

from __future__ import annotations

import dataclasses

import pytest

from aishell import process
from aishell.engine import Engine
from aishell.lock.foundation import Foundation
from aishell.request import Mount, cli_args
from aishell.run.identity import GitIdentity, HostUser
from aishell.run.sandbox import SandboxSpec, build_request
from aishell.store.images import ensure_foundation
from tests.fixtures_security import (
    TEST_LABEL,
    make_tree,
    new_label,
    remove_containers,
)

PROBE = r"""
set -u
echo "user=$(id -un)"
echo "uid=$(id -u)"
echo "home=$HOME"
echo "marker=$(test -e "$HOME/host-home-marker" && echo visible || echo absent)"
echo "home_entries=$(ls -A "$HOME" | grep -v '^\.\(bashrc\|profile\|bash_logout\)$' | wc -l)"
echo "home_mounted=$(grep -c " $HOME " /proc/self/mountinfo || true)"
socks=$(find / -xdev \( -path /proc -o -path /sys \) -prune -o \
        \( -name 'docker.sock' -o -name 'podman.sock' -o -name 'containerd.sock' \) -print \
        2>/dev/null | wc -l)
echo "sockets=$socks"
echo "sock_mounts=$(grep -c 'docker.sock' /proc/self/mountinfo || true)"
grep NoNewPrivs /proc/self/status | tr -d '\t' | tr 'A-Z' 'a-z' | sed 's/:/=/'
if ! command -v sudo >/dev/null; then echo "sudo=absent"
elif sudo -n true 2>/dev/null; then echo "sudo=works"
else echo "sudo=fails"; fi
"""


def _probe(tmp_path, image: str, *, sudo: bool = False, extra_mounts=()) -> dict[str, str]:
    home = tmp_path / "host-home"
    make_tree(home, ["host-home-marker", ".ssh/id_ed25519"], "secret\n")
    project = make_tree(tmp_path / "host-home" / "project", ["main.py"])
    label = new_label()
    spec = SandboxSpec(image=image, project=project,
                       user=HostUser(uid=1000, gid=1000, name="tester", home=str(home)),
                       git=GitIdentity(None, None), command=["bash", "-c", PROBE], sudo=sudo,
                       extra_mounts=tuple(extra_mounts))
    req = build_request(spec)
    req = dataclasses.replace(req, interactive=False, labels={**req.labels, TEST_LABEL: label})
    try:
        result = process.run(cli_args(req), env=req.process_env(), timeout=120)
    finally:
        remove_containers({TEST_LABEL: label})
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def test_requests_carry_no_new_privileges_unless_sudo(tmp_path):
    spec = SandboxSpec(image="img", project=tmp_path, user=HostUser(1000, 1000, "u", "/h"),
                       git=GitIdentity(None, None))
    req = build_request(spec)
    assert req.security_opts == ("no-new-privileges",)
    argv = cli_args(req)
    assert argv[argv.index("--security-opt") + 1] == "no-new-privileges"
    sudo_req = build_request(dataclasses.replace(spec, sudo=True))
    assert sudo_req.security_opts == ()
    assert sudo_req.env["AISHELL_SUDO"] == "1"


def test_sudo_is_only_in_the_foundation_when_asked_for():
    assert "sudo" not in Foundation.from_settings().packages
    with_sudo = Foundation.from_settings(sudo=True)
    assert "sudo" in with_sudo.packages
    assert with_sudo.id != Foundation.from_settings().id


@pytest.mark.engine
def test_the_sandbox_sees_neither_the_host_home_nor_the_engine_socket(tmp_path, foundation_tag):
    seen = _probe(tmp_path, foundation_tag)
    assert seen["user"] == "tester" and seen["uid"] == "1000"
    assert seen["home"] == str(tmp_path / "host-home")  # same path as on the host …
    assert seen["marker"] == "absent"  # … but not the host's directory
    assert seen["home_entries"] == "1"  # only the project's parent directory chain
    assert seen["home_mounted"] == "0"
    assert seen["sockets"] == "0"
    assert seen["sock_mounts"] == "0"


@pytest.mark.engine
def test_the_probe_sees_them_when_they_are_mounted(tmp_path, foundation_tag):
    """Control: the same probe does report a mounted home and socket (not a blind test)."""
    home = str(tmp_path / "host-home")
    seen = _probe(tmp_path, foundation_tag, extra_mounts=[
        Mount(home, home),
        Mount("/var/run/docker.sock", "/var/run/docker.sock", read_only=True),
    ])
    assert seen["marker"] == "visible"
    assert seen["home_mounted"] == "1"
    assert seen["sockets"] == "1"
    assert seen["sock_mounts"] == "1"


@pytest.mark.engine
def test_no_new_privileges_holds_and_the_entrypoint_still_drops_to_the_user(
        tmp_path, foundation_tag):
    seen = _probe(tmp_path, foundation_tag)
    assert seen["nonewprivs"] == "1"
    assert seen["user"] == "tester"  # gosu worked under no-new-privileges
    assert seen["sudo"] == "absent"


@pytest.fixture(scope="module")
def sudo_foundation():
    engine = Engine()
    foundation = Foundation.from_settings(sudo=True)
    state = ensure_foundation(engine, foundation)
    yield foundation.tag
    if state.built:
        engine.remove_image(foundation.tag, force=True)


@pytest.mark.engine
def test_run_sudo_true_gives_passwordless_sudo(tmp_path, sudo_foundation):
    seen = _probe(tmp_path, sudo_foundation, sudo=True)
    assert seen["sudo"] == "works"
    assert seen["nonewprivs"] == "0"  # sudo cannot work under no-new-privileges
    assert seen["marker"] == "absent" and seen["sockets"] == "0"


@pytest.mark.engine
def test_sudo_in_the_image_is_blocked_without_the_setting(tmp_path, sudo_foundation):
    """An image that has sudo (an extension, say) still gives no root without the setting."""
    seen = _probe(tmp_path, sudo_foundation, sudo=False)
    assert seen["sudo"] == "fails"
    assert seen["nonewprivs"] == "1"


def test_secret_values_never_reach_the_command_line(tmp_path):
    spec = SandboxSpec(image="img", project=tmp_path, user=HostUser(1000, 1000, "u", "/h"),
                       git=GitIdentity(None, None), extra_env={"ANTHROPIC_API_KEY": "sk-sekrit"},
                       passthrough=("OPENAI_API_KEY",), env_volume="aishell-env-x")
    req = build_request(spec)
    argv = cli_args(req)
    assert "sk-sekrit" not in " ".join(argv)
    assert "ANTHROPIC_API_KEY" in argv and "OPENAI_API_KEY" in argv  # by name only
    (tools,) = [m for m in req.mounts if m.target == "/tools"]
    assert tools.read_only
    assert not any(m.source in ("/h", "/var/run/docker.sock") for m in req.mounts)
