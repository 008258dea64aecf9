"""Who the host user is: ids, name, home, git identity. Read once per launch."""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from aishell import inputs, process


@dataclass(frozen=True)
class HostUser:
    uid: int
    gid: int
    name: str
    home: str

    @classmethod
    def current(cls) -> HostUser:
        uid, gid = os.getuid(), os.getgid()
        inputs.note("/etc/passwd", "/etc/group")
        try:
            entry = pwd.getpwuid(uid)
            name, pw_home = entry.pw_name, entry.pw_dir
        except KeyError:  # a UID with no passwd entry (common in CI runners)
            name, pw_home = os.environ.get("USER") or f"user{uid}", f"/home/user{uid}"
        home = os.environ.get("HOME") or pw_home
        return cls(uid=uid, gid=gid, name=name, home=home)


@dataclass(frozen=True)
class GitIdentity:
    name: str | None
    email: str | None


def git_identity(project: Path) -> GitIdentity:
    """``user.name``/``user.email`` as git sees them in ``project`` (repo config included)."""
    inputs.note(*git_config_files(project))
    try:
        result = process.run(
            ["git", "config", "--get-regexp", r"^user\.(name|email)$"],
            check=False,
            cwd=project,
        )
    except Exception:
        return GitIdentity(None, None)
    values: dict[str, str] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        values[key] = value  # later (more local) settings win
    return GitIdentity(values.get("user.name"), values.get("user.email"))


def git_config_files(project: Path) -> list[Path]:
    """The files git may read ``user.*`` from in ``project``, whether they exist or not:
    the system and global files, and each directory's ``.git`` from the project up to the
    root (the repository git finds is the nearest; one created above changes the answer),
    with the config of the repository a ``.git`` dir or file leads to."""
    home = Path(os.environ.get("HOME") or Path.home())
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(home / ".config")
    files = [Path("/etc/gitconfig"), Path("/usr/local/etc/gitconfig"), home / ".gitconfig",
             Path(xdg) / "git" / "config"]
    for directory in (project, *project.parents):
        dotgit = directory / ".git"
        files.append(dotgit)
        if dotgit.is_dir():
            files.append(dotgit / "config")
            break
        if dotgit.is_file():
            try:
                text = dotgit.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):
                break
            gitdir = Path(text.removeprefix("gitdir:").strip())
            gitdir = gitdir if gitdir.is_absolute() else directory / gitdir
            files += [gitdir / "config", gitdir / "commondir"]
            common = gitdir / "commondir"
            if common.is_file():
                target = Path(common.read_text(encoding="utf-8").strip())
                files.append((target if target.is_absolute() else gitdir / target) / "config")
            break
    return files
