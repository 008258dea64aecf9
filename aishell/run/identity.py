"""Who the host user is: ids, name, home, git identity. Read once per launch."""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from aishell import process


@dataclass(frozen=True)
class HostUser:
    uid: int
    gid: int
    name: str
    home: str

    @classmethod
    def current(cls) -> HostUser:
        uid, gid = os.getuid(), os.getgid()
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
