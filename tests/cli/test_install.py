"""aishell as users install it: a wheel built by `uv build`, installed with `uv tool install`
and run with `uvx --from`, from a directory outside the source tree."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import pytest

import aishell

SOURCE = Path(aishell.__file__).resolve().parent.parent


def _clean_env(tmp: Path) -> dict[str, str]:
    """The environment of a user who never saw this checkout: no venv, no project, own tool dirs.

    uv's own download cache stays (XDG_CACHE_HOME is reset by the suite's private state).
    """
    drop = {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "XDG_CACHE_HOME",
            "XDG_CONFIG_HOME", "XDG_STATE_HOME", "UV_PROJECT"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    venv_bin = str(Path(os.environ.get("VIRTUAL_ENV", SOURCE / ".venv")) / "bin")
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)
    env.update(UV_TOOL_DIR=str(tmp / "tools"), UV_TOOL_BIN_DIR=str(tmp / "bin"),
               AISHELL_HOME=str(tmp / "home"))
    return env


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, f"{argv}: {result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    env = _clean_env(out)
    _run(["uv", "build", "--wheel", "--out-dir", str(out), str(SOURCE)], cwd=out, env=env)
    (built,) = out.glob("aishell-*.whl")
    return built


def test_wheel_holds_every_module_and_resource(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(["git", "-C", str(SOURCE), "ls-files", "aishell"], capture_output=True,
                             text=True, check=True).stdout.split()
    assert tracked, "the source tree is a git checkout"
    assert set(tracked) <= names
    assert {"aishell/resources/Dockerfile.foundation", "aishell/resources/entrypoint.sh"} <= names


def test_uv_tool_install_from_the_wheel_runs(wheel: Path, tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _run(["uv", "tool", "install", str(wheel)], cwd=elsewhere, env=env)
    exe = tmp_path / "bin" / "aishell"
    assert exe.exists()
    assert _run([str(exe), "--version"], elsewhere, env).strip() == f"aishell {aishell.__version__}"
    # The installed copy, not this checkout: its package lives in the tool's own venv.
    python = next((tmp_path / "tools" / "aishell" / "bin").glob("python3*"))
    where = _run([str(python), "-c", "import aishell; print(aishell.__file__)"], elsewhere, env)
    assert str(tmp_path / "tools") in where and str(SOURCE) not in where
    # The foundation's Dockerfile template and entrypoint come from the wheel's resources.
    installed = _run([str(exe), "info", "--foundation"], elsewhere, env)
    source = _run(["uv", "run", "--project", str(SOURCE), "aishell", "info", "--foundation"],
                  elsewhere, {**env, "VIRTUAL_ENV": ""})
    assert installed == source and installed.startswith("# aishell foundation image")
    assert "complete -F _aishell aishell" in _run([str(exe), "completion", "bash"], elsewhere, env) \
        .replace("-o default ", "")


def test_uvx_from_the_wheel_runs(wheel: Path, tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    out = _run(["uvx", "--from", str(wheel), "aishell", "--version"], cwd=tmp_path, env=env)
    assert out.strip() == f"aishell {aishell.__version__}"
