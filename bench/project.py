"""The four-harness project the sync rows use: the committed lock example, under private names.

The env id of ``aishell.lock.example`` is shared with every other user of the example on this
engine (the live tests sync exactly that env), and a cold-sync benchmark removes its env volume
between runs. So the bench renames the harnesses (``claude`` -> ``claude-b<tag>``, same
package, version, bins and closure) and writes the manifest that asks for exactly that: the
env holds the same bytes under ``h/claude-b<tag>/`` and gets an env id of its own.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "aishell.lock.example"


def write_project(project: Path, tag: str) -> str:
    """Write aishell.toml + aishell.lock into ``project``; return the env id for linux/amd64."""
    from aishell.lock import lockfile
    from aishell.project.config import read_toml

    lock = lockfile.parse(read_toml(EXAMPLE))
    renamed = tuple(dataclasses.replace(h, name=f"{h.name}-b{tag}") for h in lock.harnesses)
    lock = dataclasses.replace(lock, harnesses=renamed)
    project.mkdir(parents=True, exist_ok=True)
    manifest = ["[harnesses]"]
    for h in renamed:
        bins = ", ".join(f'"{b}"' for b in h.wanted_bins)
        manifest.append(f'"{h.name}" = {{ npm = "{h.package}", version = "{h.requested}", '
                        f"bin = [{bins}] }}")
    (project / "aishell.toml").write_text("\n".join(manifest) + "\n")
    (project / "aishell.lock").write_text(lockfile.dumps(lock))
    return lock.env_ids()["linux/amd64"]


def versions() -> dict[str, str]:
    """package -> exact version, from the lock example."""
    from aishell.lock import lockfile
    from aishell.project.config import read_toml

    return {h.package: h.version for h in lockfile.parse(read_toml(EXAMPLE)).harnesses}
