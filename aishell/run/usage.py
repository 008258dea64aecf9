"""What a launch tells the store index: the images (and env) a project runs on.

Written after the hand-over to the engine CLI (from a detached child), so a launch never
waits on the index's lock or fsync; the index keeps last use to the minute. The same child
then publishes this home's gc roots on the engine (aishell.store.engineroots), so other
homes' gc sees what the launch recorded, and refreshes the home's heartbeat when it is due.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aishell.paths import Paths


def record(entry: dict[str, Any], *, publish: bool = True) -> None:
    """Write a launch's record into the store index (called off the critical path), then
    (``publish``) this home's gc roots on the engine."""
    from aishell.paths import default_paths  # noqa: PLC0415
    from aishell.store import indexfile  # noqa: PLC0415

    paths = default_paths()
    if not publish:
        _record(paths, entry)
        return
    with indexfile.roots_lock(paths):  # at once: see indexfile.roots_lock
        _record(paths, entry)
        from aishell.engine import Engine  # noqa: PLC0415
        from aishell.store import engineroots  # noqa: PLC0415

        engine = Engine(docker_host=entry.get("docker_host"), cli=entry.get("engine_cli"))
        try:
            engineroots.publish_or_warn(engine, paths)
        finally:
            engine.close()


def _record(paths: Paths, entry: dict[str, Any]) -> None:
    project = Path(entry["project"])
    images = [tuple(i) for i in entry["images"]]
    if entry["kind"] == "launch":
        from aishell.store import indexfile  # noqa: PLC0415

        indexfile.record_launch(paths, project, images)
        return
    from aishell.store import index  # noqa: PLC0415

    lock_path = Path(entry["lock_path"])
    index.record_use(paths, project, lock_path=lock_path, env_ids=entry["env_ids"],
                     images=[index.ImageRef(*i) for i in images],
                     lock_bytes=lock_path.read_bytes() if lock_path.is_file() else None)
