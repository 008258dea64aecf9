"""security.preflight: detection before interactive launches, y/N on a TTY, refusal without."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from aishell import cli
from aishell.errors import AishellError
from aishell.security import gitleaks
from aishell.security import preflight as security
from tests.fixtures_security import context, init_repo, make_tree


def _planted(tmp_path, toml=None):
    """The issue's acceptance project: a planted id_rsa and .env."""
    ctx = context(tmp_path / "proj", toml)
    make_tree(ctx.project, ["id_rsa", ".env", "src/app.py"])
    return ctx


def test_high_without_a_tty_fails_with_a_hint(tmp_path):
    ctx = _planted(tmp_path)
    with pytest.raises(AishellError) as info:
        security.preflight(ctx, interactive=True, unsafe=False, ask=None)
    assert "id_rsa" in info.value.message
    assert "--unsafe" in (info.value.hint or "")
    assert "allowlist" in (info.value.hint or "")


def test_high_confirmed_on_a_tty_launches(tmp_path, capsys):
    ctx = _planted(tmp_path)
    questions: list[str] = []
    warnings = security.preflight(ctx, interactive=True, unsafe=False,
                                  ask=lambda q: questions.append(q) or True)
    assert questions == ["launch anyway?"]
    shown = capsys.readouterr().err
    assert "id_rsa" in shown and ".env" in shown  # every finding shown before the question
    assert not any("sensitive files" in w for w in warnings)  # not repeated afterwards


def test_high_declined_on_a_tty_cancels(tmp_path):
    ctx = _planted(tmp_path)
    with pytest.raises(AishellError, match="cancelled"):
        security.preflight(ctx, interactive=True, unsafe=False, ask=lambda q: False)


def test_high_not_ignored_by_git_is_shown_as_may_be_committed(tmp_path, capsys):
    ctx = context(tmp_path / "repo")
    init_repo(ctx.project)
    make_tree(ctx.project, ["id_rsa"])
    with pytest.raises(AishellError, match=r"id_rsa  \(may be committed\)"):
        security.preflight(ctx, interactive=True, unsafe=False)


def test_medium_and_low_only_warn(tmp_path):
    ctx = context(tmp_path / "proj")
    make_tree(ctx.project, [".env", ".env.example"])
    warnings = security.preflight(ctx, interactive=True, unsafe=False,
                                  ask=lambda q: pytest.fail("MEDIUM must not ask"))
    (found,) = [w for w in warnings if "sensitive files" in w]
    assert ".env" in found and "LOW" in found and "MEDIUM" in found


@pytest.mark.parametrize(("interactive", "unsafe", "toml"), [
    (False, False, None),  # exec: no scan
    (True, True, None),  # --unsafe
    (True, False, "[security]\ndetection = false\n"),
])
def test_detection_is_skipped(tmp_path, interactive, unsafe, toml):
    ctx = _planted(tmp_path, toml)
    warnings = security.preflight(ctx, interactive=interactive, unsafe=unsafe, ask=None)
    assert not any("sensitive" in w for w in warnings)


def test_allowlisted_high_needs_no_confirmation(tmp_path):
    ctx = _planted(tmp_path, '[security]\nallowlist = [{ path = "id_rsa", reason = "fake" }]\n')
    warnings = security.preflight(ctx, interactive=True, unsafe=False, ask=None)
    assert any(".env" in w for w in warnings)


def test_freshness_warning_is_part_of_preflight(tmp_path):
    ctx = context(tmp_path / "proj")
    warnings = security.preflight(ctx, interactive=True, unsafe=False)
    assert any("no Gitleaks scan recorded" in w for w in warnings)
    gitleaks.record_scan(ctx.paths.state, ctx.project, exit_code=0, seconds=0.1)
    assert not any("Gitleaks" in w for w in security.preflight(ctx, interactive=True,
                                                                 unsafe=False))


def test_cli_shell_refuses_high_findings_without_a_tty(tmp_path, capsys):
    ctx = _planted(tmp_path)
    code = cli.main(["--project", str(ctx.project), "shell"])
    err = capsys.readouterr().err
    assert code == 1
    assert "error: sensitive files in the project (HIGH)" in err
    assert "hint:" in err and "--unsafe" in err


PTY_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from aishell.security import preflight as security
    from aishell.project.context import Context
    from aishell.errors import AishellError
    from aishell.paths import default_paths
    ctx = Context(project=Path(sys.argv[1]), paths=default_paths(), quiet=True)
    try:
        security.preflight(ctx, interactive=True, unsafe=False)
    except AishellError as exc:
        print("REFUSED:", exc.message.splitlines()[0], flush=True)
        sys.exit(1)
    print("LAUNCH", flush=True)
""")


@pytest.mark.parametrize(("answer", "code", "outcome"), [
    ("y", 0, "LAUNCH"), ("yes", 0, "LAUNCH"), ("n", 1, "REFUSED: launch cancelled"),
    ("", 1, "REFUSED: launch cancelled"),
])
def test_a_real_terminal_gets_a_y_n_question(tmp_path, answer, code, outcome):
    """preflight in a child process whose stdin/stderr are a pseudo-terminal."""
    ctx = _planted(tmp_path)
    main, child = os.openpty()
    proc = subprocess.Popen([sys.executable, "-c", PTY_SCRIPT, str(ctx.project)],
                            stdin=child, stdout=child, stderr=child, close_fds=True)
    os.close(child)
    out = b""
    try:
        while b"[y/N]" not in out:
            chunk = os.read(main, 4096)
            assert chunk, out
            out += chunk
        os.write(main, answer.encode() + b"\n")
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        proc.wait(timeout=30)
        os.close(main)
    text = out.decode()
    assert "id_rsa" in text and "launch anyway? [y/N]" in text
    assert outcome in text
    assert proc.returncode == code
