"""Writing a launch's plan for :mod:`aishell.run.fast` to replay, and the launch's record.

A plan is saved after a full launch has computed it and before it creates anything, for
the launches whose plan is a pure function of files and engine state: ``exec`` (no
sensitive-file scan, no name, no pre-start), not detached, no host files to seed. The
file (``<state>/launch-plans/<key>.plan``, mode 0600, written atomically) holds the
engine CLI's arguments, the variables the launch sets for it (values written in config,
never a passed-through host value), the warnings to show again, the images and env it
needs, and the signature of every file the plan was computed from. A file that changed
between its read and the save means the plan is not saved.

A command whose answer is a pure function of files — ``lock --check`` of a fresh lock —
is saved the same way as an *answer*: what it printed and its exit code, replayed while
every input is unchanged (:func:`save_answer`).
"""

from __future__ import annotations

import contextlib
import json
import marshal
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from aishell import inputs, render
from aishell.engine import create_body, wire
from aishell.errors import AishellError
from aishell.project.context import Context
from aishell.request import cli_args
from aishell.run import fast
from aishell.run.plan import Plan

PLANS_KEPT = 64  # plans per state dir; the oldest go first


def cacheable(p: Plan, *, one_shot: bool) -> bool:
    """Whether a replay of ``p`` would be the same launch. Not in allowlist mode: its
    egress policy is made anew by every launch, and removed by the launch afterwards."""
    req = p.request
    uses_env = p.env_volume is not None
    return (one_shot and not req.detach and not p.prepare_dirs and not p.prepare_files
            and not (uses_env and req.extra_args) and p.egress is None)


def record_of(ctx: Context, p: Plan, *, replay: bool) -> dict[str, Any] | None:
    """What the store index learns from this launch. A full launch with an env has had
    it recorded by sync already; a replay records what that sync would have."""
    images = [list(i) for i in p.images]
    # The engine the launch used: the recording child publishes this home's gc roots there.
    engine = {"docker_host": ctx.engine.docker_host,
              "engine_cli": ctx.config.table("settings").get("engine")}
    if p.env_volume is None:
        return {"kind": "launch", "project": str(ctx.project), "images": images, **engine}
    if not replay:
        if any(role == "proxy" for role, _id, _tag in p.images):
            # sync recorded the env and its images, not the proxy image: record them all
            return {"kind": "launch", "project": str(ctx.project), "images": images}
        return None
    from aishell.lock.freshness import read_lock  # noqa: PLC0415

    lock = read_lock(ctx.config.lock_path)
    if lock is None:
        return None
    return {"kind": "use", "project": str(ctx.project), "lock_path": str(ctx.config.lock_path),
            "env_ids": dict(lock.env_ids()), "images": images, **engine}


def _base_check(ctx: Context) -> list[list[str]]:
    """The base image sync compares with the lock (its warning depends on the engine)."""
    from aishell.lock.freshness import read_lock  # noqa: PLC0415
    from aishell.store.sync import engine_platform  # noqa: PLC0415

    lock = read_lock(ctx.config.lock_path)
    if lock is None or not lock.base_digests.get(engine_platform(ctx)):
        return []
    image = ctx.engine.image_inspect(lock.base)
    return [[lock.base, str(image["Id"])]] if image else []


def _entry(ctx: Context, p: Plan, noted: dict[str, list[int] | None]) -> dict[str, Any] | None:
    req = p.request
    images = [[tag, image_id] for _role, image_id, tag in p.images]
    sock = wire.socket_path(ctx.engine.docker_host)
    if sock is None:
        return None  # a remote engine over TCP or SSH: the full launch every time
    entry: dict[str, Any] = {
        "format": fast.FORMAT, "socket": sock,
        "inputs": [[path, sig] for path, sig in sorted(noted.items())],
        "said": list(p.said), "title": ctx.project.name,
        "record": record_of(ctx, p, replay=True),
    }
    if p.env_volume is None and (req.tty or req.extra_args):
        # The engine CLI runs it: a TTY is its job, and extra engine arguments have no
        # API form here.
        entry.update(mode="cli", argv=cli_args(req, ctx.engine.cli), process_env=req.process_env(),
                     images=images)
        return entry
    env: dict[str, str] | None = None
    if p.env_volume is not None:
        info = ctx.engine.volume_inspect(p.env_volume)
        env_id = ((info or {}).get("Labels") or {}).get("dev.aishell.env-id")
        if not env_id:
            return None
        env = {"volume": p.env_volume, "env_id": env_id}
    body = create_body(req, {})
    del body["Env"]
    prefix = json.dumps(body, separators=(",", ":"))
    entry.update(
        mode="api", argv=[ctx.engine.cli, "start", "--attach", "--interactive"],
        process_env={}, images=images + _base_check(ctx),
        env=env,
        create_path="/containers/create", body_prefix=prefix[:-1], tty=req.tty,
        passthrough=list(req.env_passthrough), fixed_env=dict(req.env),
    )
    return entry


def save(ctx: Context, p: Plan) -> None:
    """Save ``p`` for the next identical launch (silently skipped when it cannot be)."""
    _save(ctx, lambda noted: _entry(ctx, p, noted))


def save_attach(ctx: Context, container: str, container_id: str, argv: list[str],
                exec_config: bytes | None = None) -> None:
    """Save an ``attach``: replayed while that very container is running. With
    ``exec_config`` (no TTY, local engine) the replay runs the exec over the API."""
    sock = wire.socket_path(ctx.engine.docker_host)
    if sock is None:
        return
    _save(ctx, lambda noted: {
        "format": fast.FORMAT, "socket": sock, "mode": "exec" if exec_config else "cli",
        "argv": argv, "process_env": {}, "said": [], "title": None, "record": None,
        "images": [], "containers": [[container, container_id]],
        "exec": [container_id, exec_config] if exec_config else None,
        "inputs": [[path, sig] for path, sig in sorted(noted.items())],
    })


class Tee:
    """A stream that writes through and keeps what was written."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return int(self.stream.write(text))

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding, …
        return getattr(self.stream, name)

    @property
    def text(self) -> str:
        return "".join(self.parts)


@contextlib.contextmanager
def capturing() -> Iterator[tuple[Tee, Tee]]:
    """Standard output and error written through and kept, for :func:`save_answer`."""
    out, err = Tee(sys.stdout), Tee(sys.stderr)
    sys.stdout, sys.stderr = out, err
    try:
        yield out, err
    finally:
        sys.stdout, sys.stderr = out.stream, err.stream


def save_answer(ctx: Context, code: int, stdout: str, stderr: str) -> None:
    """Save what this command printed, to be printed again while its inputs are unchanged."""
    _save(ctx, lambda noted: {
        "format": fast.FORMAT, "socket": "", "mode": "answer", "code": code,
        "stdout": stdout, "stderr": stderr, "images": [], "said": [], "record": None,
        "inputs": [[path, sig] for path, sig in sorted(noted.items())],
    })


def save_sync(ctx: Context, result: Any, stdout: str, stderr: str) -> None:
    """Save a no-op ``sync``: answered again while its inputs, the images it found and its
    env are unchanged; the replay records the use in the index, as this sync did."""
    env = result.env
    lock_path = str(ctx.config.lock_path)

    def make(noted: dict[str, list[int] | None]) -> dict[str, Any] | None:
        sock = wire.socket_path(ctx.engine.docker_host)
        if sock is None:
            return None
        images = [[tag, image_id] for _role, image_id, tag in result.images_used]
        from aishell.lock.freshness import read_lock  # noqa: PLC0415

        lock = read_lock(ctx.config.lock_path)
        if lock is None:
            return None
        return {
            "format": fast.FORMAT, "socket": sock, "mode": "answer", "code": 0,
            "stdout": stdout, "stderr": stderr, "said": [],
            "images": images + _base_check(ctx),
            "env": {"volume": env.volume, "env_id": env.env_id},
            "record": {"kind": "use", "project": str(ctx.project), "lock_path": lock_path,
                       "env_ids": dict(lock.env_ids()),
                       "images": [list(i) for i in result.images_used]},
            "inputs": [[path, sig] for path, sig in sorted(noted.items())],
        }

    _save(ctx, make)


def _save(ctx: Context, make: Callable[[dict[str, list[int] | None]], dict[str, Any] | None]) -> None:
    current = inputs.current()
    if current is None:
        return
    argv, noted = current
    if inputs.changed(noted):
        return  # something the plan read changed while it was computed
    try:
        entry = make(noted)
        if entry is None:
            return
        path = Path(fast.plan_path(os.environ, fast.key(argv, os.environ, str(Path.cwd()))))
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(marshal.dumps(entry))
        tmp.replace(path)
        _trim(path.parent)
    except (AishellError, OSError, ValueError) as exc:
        if ctx.verbose:
            render.err(f"the launch plan was not cached: {exc}")


def _trim(directory: Path) -> None:
    plans = sorted(directory.glob("*.plan"), key=lambda q: q.stat().st_mtime)
    for old in plans[:-PLANS_KEPT]:
        old.unlink(missing_ok=True)
