"""A launch from the plan cache: a launch seen before starts at the engine's speed.

(The same cache answers ``lock --check`` of an unchanged project: see
:func:`aishell.run.plancache.save_answer`.)

A launch computes its plan (config, lock, images, the container request) once and
:mod:`aishell.run.plancache` writes it to ``<state>/launch-plans/<key>.plan``. The key
is the exact command line, working directory, user, terminal state and environment
(minus a few shell bookkeeping variables), and aishell's own code. The next identical
launch finds the plan here and replays it when, and only when:

- every file the plan was computed from is as it was (present or absent, same size,
  inode, mtime and ctime): the manifest, the lock, the global config, the original
  ``config.yaml`` files, the extension's Dockerfile and build context, git's config
  files, mount sources, the CA bundle, ``/etc/passwd``;
- every image it runs on still has the id it had, asked of the engine now;
- its env volume still exists with its labels and a completion marker for its env id.

Anything else — a missing or corrupt plan, a changed input, an engine that answers
unexpectedly, a remote engine — falls through to the full launch, which then writes a
fresh plan. Nothing here raises: a replay either hands over to the engine CLI or does
not start. Store bookkeeping (the index's last-use record) runs in a detached child,
so the launch never waits on it.

Only ``os``, ``sys``, ``marshal``, ``_blake2``, ``fcntl`` and the engine's bare socket
request are imported here (about 3 ms); the full launch imports ~60 ms of modules.
"""

from __future__ import annotations

import marshal
import os
import sys
import time

from aishell import __version__
from aishell.engine import wire
from aishell.inputs import signature

TYPE_CHECKING = False  # typing costs ~4 ms to import; mypy reads this as True
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

FORMAT = 1
# Shell bookkeeping that changes between otherwise identical launches and that no plan
# reads (the working directory is part of the key on its own).
VOLATILE = frozenset({"_", "OLDPWD", "SHLVL", "PWD"})
MARKER = ".aishell-env.json"


def state_dir(environ: Mapping[str, str]) -> str:
    """``aishell.paths.default_paths(environ).state``, without importing pathlib."""
    root = environ.get("AISHELL_HOME")
    if root:
        return os.path.join(root, "state")
    value = environ.get("XDG_STATE_HOME", "")
    base = value if value and os.path.isabs(value) else os.path.join(
        os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "aishell")


def _sources() -> list[tuple[str, int, int]]:
    """aishell's own files (a changed checkout is a changed program)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out: list[tuple[str, int, int]] = []
    stack = [root]
    while stack:
        directory = stack.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        stack.append(entry.path)
                else:
                    st = entry.stat(follow_symlinks=False)
                    out.append((entry.path, st.st_mtime_ns, st.st_size))
    out.sort()
    return out


def _blake2b() -> Any:
    try:
        from _blake2 import blake2b  # noqa: PLC0415 - hashlib costs ~4 ms (OpenSSL)
    except ImportError:  # pragma: no cover - every CPython we support has it
        from hashlib import blake2b  # noqa: PLC0415
    return blake2b(digest_size=20, person=b"aishell-plan")


def key(argv: Sequence[str], environ: Mapping[str, str], cwd: str) -> str:
    """The plan's file name: everything a launch reads that is not a file."""
    material = (
        FORMAT, __version__, sys.version, sys.executable, list(argv), cwd,
        os.getuid(), os.getgid(), os.isatty(0), os.isatty(1), os.isatty(2),
        sorted((k, v) for k, v in environ.items() if k not in VOLATILE),
        _sources(),
    )
    digest = _blake2b()
    # repr, not marshal: marshal's output depends on reference counts, repr's does not
    digest.update(repr(material).encode())
    return str(digest.hexdigest())


def plan_path(environ: Mapping[str, str], plan_key: str) -> str:
    return os.path.join(state_dir(environ), "launch-plans", plan_key + ".plan")


def load(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as fh:
            entry = marshal.loads(fh.read())  # noqa: S302 - our own file, 0600 in our state dir
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(entry, dict) or entry.get("format") != FORMAT:
        return None
    return entry


def _quote(ref: str) -> str:
    """Percent-encode an image or volume reference for a URL path (urllib costs ~2 ms)."""
    safe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~"
    return "".join(c if c in safe else "".join(f"%{b:02X}" for b in c.encode()) for c in ref)


def _image_id(sock: str, ref: str) -> str | None:
    status, body = wire.unix_request(sock, f"/images/{_quote(ref)}/json", 5.0)
    # The engine writes compact JSON that starts with the id; any other shape (another
    # engine's encoder) is not trusted here and sends the launch down the full path.
    if status != 200 or not body.startswith(b'{"Id":"'):
        return None
    end = body.find(b'"', 7)
    return body[7:end].decode() if end > 0 else None


def _running(sock: str, name: str, container_id: str) -> bool:
    """Whether the container ``name`` is still the one recorded, and running. (Inside a
    JSON string a quote is always escaped, so the state's bytes cannot be faked by one.)"""
    status, body = wire.unix_request(sock, f"/containers/{_quote(name)}/json", 5.0)
    return (status == 200 and body.startswith(b'{"Id":"' + container_id.encode() + b'"')
            and b'"State":{"Status":"running","Running":true' in body)


def _env_complete(sock: str, volume: str, env_id: str) -> bool:
    import json  # noqa: PLC0415 - only launches that mount an env pay for it

    status, body = wire.unix_request(sock, f"/volumes/{_quote(volume)}", 5.0)
    if status != 200:
        return False
    info = json.loads(body)
    labels = info.get("Labels") or {}
    if (labels.get("dev.aishell.managed") != "1" or labels.get("dev.aishell.kind") != "env"
            or labels.get("dev.aishell.env-id") != env_id or info.get("Driver") != "local"
            or info.get("Options")):
        return False
    try:
        with open(os.path.join(str(info.get("Mountpoint") or "/nonexistent"), MARKER),
                  "rb") as fh:
            marker = json.loads(fh.read())
    except (OSError, ValueError):
        return False  # not readable from here: the full launch reads it through the engine
    return isinstance(marker, dict) and marker.get("env_id") == env_id


def _json_string(text: str) -> str:
    out = ['"']
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif c < " ":
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def _create(sock: str, entry: dict[str, Any]) -> str | None:
    """Create the container of an API-mode plan; its id. Values of passed-through
    variables come from this process's environment, as in the full launch."""
    env = wire.api_env(entry["passthrough"], entry["fixed_env"], os.environ)
    env_json = ",".join(_json_string(f"{k}={v}") for k, v in sorted(env.items()))
    body = entry["body_prefix"] + ',"Env":[' + env_json + "]}"
    status, answer = wire.unix_request(sock, entry["create_path"], 30.0, method="POST",
                                       body=body.encode())
    if status != 201 or not answer.startswith(b'{"Id":"'):
        return None
    end = answer.find(b'"', 7)
    return answer[7:end].decode()


def bookkeeping(record: dict[str, Any] | None, stamp: str | None = None) -> None:
    """Record the use in the store index from a detached grandchild: off the critical path.

    The index keeps last use to the minute, so a plan whose use was recorded this minute
    (``stamp``'s mtime) starts no child at all: on a machine with few cores even a
    detached child's imports compete with the engine CLI for the CPU.
    """
    if not record:
        return
    if stamp is not None:
        try:
            if os.stat(stamp).st_mtime // 60 == time.time() // 60:
                return
        except OSError:
            pass
    try:
        pid = os.fork()
    except OSError:
        return
    if pid:
        os.waitpid(pid, 0)  # the child forks once more and exits at once
        return
    try:
        if os.fork():
            os._exit(0)
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        from aishell.run import usage  # noqa: PLC0415 - in the detached child only

        usage.record(record)
        if stamp is not None:
            with open(stamp, "a"):
                os.utime(stamp)
    finally:
        os._exit(0)


def _store_lock(environ: Mapping[str, str]) -> int | None:
    """The store lock, shared, without waiting (a running gc sends us down the full path,
    which waits for it and says so)."""
    import fcntl  # noqa: PLC0415

    path = os.path.join(state_dir(environ), "locks", "store.lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _answer(sock: str, entry: dict[str, Any], path: str) -> int | None:
    """Print a saved answer again, when its env (if it names one) is still complete."""
    env = entry.get("env")
    if env and not _env_complete(sock, env["volume"], env["env_id"]):
        return None
    sys.stdout.write(entry["stdout"])
    sys.stderr.write(entry["stderr"])
    sys.stdout.flush()
    sys.stderr.flush()
    bookkeeping(entry.get("record"), stamp=path[: -len(".plan")] + ".used")
    return int(entry["code"])


def _announce(entry: dict[str, Any], path: str) -> None:
    """What a launch does just before the hand-over: its warnings again, the use record
    (in a detached child), the CLI's variables, the terminal title."""
    for line in entry["said"]:
        sys.stderr.write(f"warning: {line}\n")
    bookkeeping(entry.get("record"), stamp=path[: -len(".plan")] + ".used")
    os.environ.update(entry["process_env"])
    if entry.get("title") and os.isatty(1):
        sys.stdout.write(f"\033]0;[aishell] {entry['title']}\007")
    sys.stdout.flush()
    sys.stderr.flush()


def launch(argv: Sequence[str]) -> int | None:
    """Replay the cached plan of this exact launch; None when there is none to replay."""
    environ = os.environ
    try:
        cwd = os.getcwd()
    except OSError:
        return None  # a deleted working directory: the full path explains it
    try:
        path = plan_path(environ, key(argv, environ, cwd))
        entry = load(path)
        if entry is None:
            return None
        if any(signature(path) != sig for path, sig in entry["inputs"]):
            return None
        sock = entry["socket"]  # the engine the plan was made for (DOCKER_HOST, context, podman)
        if any(_image_id(sock, ref) != image_id for ref, image_id in entry["images"]):
            return None
        if not all(_running(sock, name, cid) for name, cid in entry.get("containers", ())):
            return None
        if entry["mode"] == "answer":  # a saved answer: lock --check, a no-op sync
            return _answer(sock, entry, path)
    except (OSError, KeyError, TypeError, ValueError):
        return None
    argv_out: list[str] = entry["argv"]
    if entry["mode"] == "exec":  # an attach without a TTY: the exec over the API
        sys.stdout.flush()
        try:
            return wire.exec_attached(sock, *entry["exec"])
        except OSError:
            pass  # nothing ran: the engine CLI below tries (and explains) it
    if entry["mode"] == "api":
        env = entry.get("env")
        fd = _store_lock(environ) if env else None
        if env and fd is None:
            return None
        try:
            if env and not _env_complete(sock, env["volume"], env["env_id"]):
                return None
            created = _create(sock, entry)
        except (OSError, KeyError, TypeError, ValueError):
            return None
        finally:
            if fd is not None:
                os.close(fd)  # the container exists: from now on it keeps the env alive
        if created is None:
            return None
        argv_out = [*argv_out, created]
    _announce(entry, path)
    if entry["mode"] == "api" and entry.get("tty") is False:
        # No TTY: attach, start and wait over the API, signals passed on; the engine CLI
        # below only when that could not start it.
        code = wire.run_attached(sock, argv_out[-1])
        if code is not None:
            return code
    try:
        os.execvp(argv_out[0], argv_out)  # noqa: S606 - the engine CLI takes over the TTY
    except OSError:
        if entry["mode"] == "api":
            # The container exists and nothing will attach to it: say so, like a failed
            # launch, rather than start a second one.
            sys.stderr.write(f"error: {argv_out[0]}: command not found\n"
                             f"hint: install {argv_out[0]} or put it on PATH\n")
            return 1
        return None
    return 0  # pragma: no cover - execvp does not return
