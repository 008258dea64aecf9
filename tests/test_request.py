from __future__ import annotations

from aishell.request import ContainerRequest, Mount, Port, cli_args


def test_cli_args_pass_env_by_name_only():
    req = ContainerRequest(image="img", env={"SECRET": "hunter2", "A": "1"},
                           env_passthrough=("ANTHROPIC_API_KEY",))
    argv = cli_args(req)
    assert "hunter2" not in " ".join(argv)
    assert argv.count("--env") == 3
    for name in ("A", "ANTHROPIC_API_KEY", "SECRET"):
        assert argv[argv.index(name) - 1] == "--env"
    assert req.process_env() == {"SECRET": "hunter2", "A": "1"}


def test_cli_args_order_and_defaults():
    req = ContainerRequest(image="img", command=("sh", "-c", "echo hi"), name="n",
                           workdir="/p", tty=True, labels={"b": "2", "a": "1"})
    argv = cli_args(req)
    assert argv[:6] == ["docker", "run", "--rm", "--init", "--interactive", "--tty"]
    assert argv[-4:] == ["img", "sh", "-c", "echo hi"]
    labels = [argv[i + 1] for i, a in enumerate(argv) if a == "--label"]
    assert labels == ["a=1", "b=2"]


def test_mount_spec_quotes_commas_and_quotes():
    m = Mount('/home/u/a,b "c"', "/home/u/a,b \"c\"", read_only=True)
    assert m.spec() == (
        'type=bind,"source=/home/u/a,b ""c""","target=/home/u/a,b ""c""",readonly'
    )


def test_mount_spec_plain_and_volume():
    assert Mount("/p q", "/p q").spec() == "type=bind,source=/p q,target=/p q"
    vol = Mount("aishell-env-x", "/tools", read_only=True, kind="volume", no_copy=True)
    assert vol.spec() == "type=volume,source=aishell-env-x,target=/tools,readonly,volume-nocopy"


def test_port_spec():
    assert Port("8080", "80").spec() == "8080:80/tcp"
    assert Port("53", "53", "127.0.0.1", "udp").spec() == "127.0.0.1:53:53/udp"
    assert Port("1", "2", "::1").spec() == "[::1]:1:2/tcp"


def test_engine_cli_is_configurable():
    assert cli_args(ContainerRequest(image="i"), "podman")[0] == "podman"
