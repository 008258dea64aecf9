"""Where aishell keeps its files on the host (XDG, or everything under AISHELL_HOME)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

STATE_README = """\
This directory is aishell's host-side state: the store index (projects that use the
store, pins, generations), Gitleaks scan times and bug-report logs. It is safe to read;
edit it only through aishell (pin, unpin, gc). Deleting it makes every store item
unreferenced, so the next `aishell gc` may remove envs that projects still need
(they are rebuilt by `aishell sync`).
"""


def working_dir() -> Path:
    """The current directory; a deleted one is a user error, not a crash.

    Raises:
        AishellError: the directory the shell is in no longer exists.
    """
    try:
        return Path.cwd()
    except FileNotFoundError:
        from aishell.errors import AishellError  # noqa: PLC0415 - only this error needs it

        raise AishellError("the current directory no longer exists",
                           hint="cd to an existing directory, or pass --project DIR") from None


def absolute(path: str | Path) -> Path:
    """``path`` made absolute and resolved against :func:`working_dir`."""
    p = Path(path)
    return (p if p.is_absolute() else working_dir() / p).resolve()


@dataclass(frozen=True)
class Paths:
    config: Path
    state: Path
    cache: Path
    legacy_global: Path | None = None  # the original tool's ~/.aishell/config.yaml

    @property
    def global_config(self) -> Path:
        return self.config / "config.toml"

    @property
    def downloads(self) -> Path:
        return self.cache / "tarballs"

    @property
    def bug_reports(self) -> Path:
        return self.state / "bug-reports"

    def ensure_state(self) -> Path:
        """Create the state directory (with its README) and return it."""
        self.state.mkdir(parents=True, exist_ok=True)
        readme = self.state / "README"
        if not readme.exists():
            readme.write_text(STATE_README, encoding="utf-8")
        return self.state


def _xdg(env: Mapping[str, str], var: str, default: str, home: Path) -> Path:
    value = env.get(var, "")
    # XDG says relative values are invalid and must be ignored.
    return Path(value) if value and Path(value).is_absolute() else home / default


def default_paths(environ: Mapping[str, str] | None = None) -> Paths:
    env = os.environ if environ is None else environ
    root = env.get("AISHELL_HOME")
    if root:
        base = Path(root)
        return Paths(config=base / "config", state=base / "state", cache=base / "cache",
                     legacy_global=base / "legacy" / "config.yaml")
    return xdg_paths(env)


def xdg_paths(env: Mapping[str, str]) -> Paths:
    """The per-user XDG locations (used when AISHELL_HOME is not set)."""
    home = Path.home()
    return Paths(
        config=_xdg(env, "XDG_CONFIG_HOME", ".config", home) / "aishell",
        state=_xdg(env, "XDG_STATE_HOME", ".local/state", home) / "aishell",
        cache=_xdg(env, "XDG_CACHE_HOME", ".cache", home) / "aishell",
        legacy_global=home / ".aishell" / "config.yaml",
    )
