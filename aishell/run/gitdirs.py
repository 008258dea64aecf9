"""Git directories outside the project that git needs inside the sandbox.

In a worktree (``git worktree add``) or a submodule, ``.git`` is a file naming a git
dir elsewhere (``gitdir: /repo/.git/worktrees/x``); that git dir's ``commondir`` names
the repository's shared objects and refs. Both must be visible at their real paths,
read-write (commits write objects and refs there), or git fails inside.
"""

from __future__ import annotations

from pathlib import Path

from aishell import inputs


def external_git_dirs(project: Path) -> list[Path]:
    """The git dirs of ``project`` that lie outside it (empty for a plain repository)."""
    dotgit = project / ".git"
    inputs.note(dotgit)
    if not dotgit.is_file():
        return []
    try:
        text = dotgit.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return []
    if not text.startswith("gitdir:"):
        return []
    gitdir = Path(text[len("gitdir:"):].strip())
    if not gitdir.is_absolute():
        gitdir = project / gitdir
    gitdir = gitdir.resolve()
    if not gitdir.is_dir():
        return []
    found = [gitdir]
    commondir_file = gitdir / "commondir"
    inputs.note(gitdir, commondir_file)
    if commondir_file.is_file():
        common = Path(commondir_file.read_text(encoding="utf-8").strip())
        if not common.is_absolute():
            common = gitdir / common
        common = common.resolve()
        if common.is_dir():
            found.insert(0, common)
    project = project.resolve()
    out: list[Path] = []
    for path in found:
        if path.is_relative_to(project) or any(path.is_relative_to(o) for o in out):
            continue
        out.append(path)
    return out
