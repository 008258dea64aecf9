"""The home's egress service: one long-lived container, a proxy and a socket per sandbox.

``aishell-egress-<home id>`` runs the egress image's supervisor (the ``egress-service.py``
resource) as the host user, on the engine's default network (its one way out), with
``<state>/egress`` mounted at /egress. It is started on first need and replaced when its
configuration (image, user, directory) changes or it is not running; it exits on its
own after :data:`IDLE_SECONDS` without a sandbox (and is removed by the next launch or
gc), and ``aishell gc`` removes it when no sandbox uses it.

It is a store item: built from the egress image (:mod:`aishell.store.proxyimage`), kept
by gc while any sandbox of its home is served, removed when none is (:func:`collect`).

A launch attaches a sandbox to it (:func:`attach`): the sandbox's policy (tinyproxy's
config and filter, made by :mod:`aishell.run.egress`) is written into
``policies/<id>`` (renamed into place whole), the service is woken with SIGUSR1, and the
launch waits until the policy's ``ready`` marker holds the running instance's token: its
proxy listens and ``sockets/<id>/proxy.sock`` exists. Only that socket's directory is
mounted into the sandbox. :func:`detach` removes the policy (the service then stops its
proxy); :func:`sweep`, run by every allowlist launch, ``ps``, ``stop`` and ``gc``,
removes policies whose sandbox no longer runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aishell.engine import Engine
from aishell.errors import AishellError, EngineConflict, EngineError, EngineNotFound
from aishell.hashing import canonical_json, plain
from aishell.paths import Paths
from aishell.project.context import Context
from aishell.request import ContainerRequest, Mount
from aishell.store.engineroots import home_id

LABEL = "dev.aishell"
EGRESS_LABEL = "dev.aishell.egress"  # the egress id, on an allowlist sandbox
KIND = "egress-service"
# The sidecar design before the egress service (one proxy container and one internal
# network per sandbox): swept when found.
KIND_PROXY = "egress-proxy"
KIND_NETWORK = "egress-network"
READY_TIMEOUT = 15.0
ORPHAN_AGE = 120.0  # seconds: younger policies may belong to a launch still starting
IDLE_SECONDS = 900
INSTANCE_LABEL = f"{EGRESS_LABEL}.instance"
CONFIG_LABEL = f"{EGRESS_LABEL}.config"
HOME_LABEL = f"{LABEL}.home"
KEYS_PATH = "/run/aishell-keys"
CA_PATH = "/etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class Service:
    """The running egress service: its container id and the instance token it writes."""

    container: str
    token: str


@dataclass(frozen=True)
class Layout:
    """Where a home's egress files live (``<state>/egress``, mounted at /egress in the
    service). Only :meth:`socket_dir` of a sandbox is mounted into that sandbox: the
    policy, its log and the other sandboxes' sockets stay out of its reach."""

    root: Path

    def policy_dir(self, egress_id: str) -> Path:
        return self.root / "policies" / egress_id

    def socket_dir(self, egress_id: str) -> Path:
        return self.root / "sockets" / egress_id

    def log(self, egress_id: str) -> Path:
        return self.policy_dir(egress_id) / "proxy.log"

    def ready(self, egress_id: str) -> Path:
        return self.policy_dir(egress_id) / "ready"


def layout(state: Path) -> Layout:
    return Layout(state / "egress")


def service_name(ctx: Context) -> str:
    return f"aishell-egress-{home_id(ctx.paths)}"


def layout_of(ctx: Context) -> Layout:
    return layout(ctx.paths.state)


def idle_seconds(environ: Mapping[str, str]) -> int:
    value = environ.get("AISHELL_EGRESS_IDLE", "")
    return int(value) if value.isdigit() else IDLE_SECONDS


def service_request(ctx: Context, image: str, token: str,
                    ca_bundle: Path | None = None) -> ContainerRequest:
    """The service's container: the image's supervisor as the host user, no capabilities.
    Not auto-removed: a service that stopped keeps its log for ``logs`` until the next
    launch replaces it or gc removes it."""
    root = layout_of(ctx).root
    idle = idle_seconds(os.environ)
    user = f"{os.getuid()}:{os.getgid()}"
    # What makes a running service the wrong one (its idle timeout does not: a shell with
    # another AISHELL_EGRESS_IDLE must not cut the connections of other sandboxes).
    bundle = str(ca_bundle) if ca_bundle else ""
    config = plain(canonical_json({"image": image, "user": user, "root": str(root),
                                   "ca_bundle": bundle}))[:16]
    mounts = [Mount(str(root), "/egress")]
    if bundle:  # what the brokers check upstream TLS against (a corporate CA works)
        mounts.append(Mount(bundle, CA_PATH, read_only=True))
    return ContainerRequest(
        image=image, name=service_name(ctx),
        env={"AISHELL_EGRESS_INSTANCE": token, "AISHELL_EGRESS_IDLE": str(idle)},
        labels={f"{LABEL}.managed": "1", f"{LABEL}.kind": KIND,
                HOME_LABEL: str(ctx.paths.state), CONFIG_LABEL: config, INSTANCE_LABEL: token},
        mounts=tuple(mounts), network=ctx.engine.default_network(),
        # the brokers' keys: memory only (the service makes its own 0700 directory in it)
        tmpfs=((KEYS_PATH, "mode=1777,size=4m"),),
        interactive=False, remove=False, init=True, hostname="aishell-egress",
        security_opts=("no-new-privileges",), user=user, cap_drop=("ALL",),
    )


@contextlib.contextmanager
def _service_lock(root: Path) -> Iterator[None]:
    """One launch of this home at a time decides whether the service must be (re)started."""
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def ensure(ctx: Context, image: str, ca_bundle: Path | None = None) -> Service:
    """The home's egress service, running with the current configuration.

    Raises:
        AishellError: it could not be started.
    """
    root = layout_of(ctx).root
    for sub in ("policies", "sockets"):
        (root / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    root.chmod(0o700)
    token = os.urandom(8).hex()
    req = service_request(ctx, image, token, ca_bundle)
    engine = ctx.engine
    with _service_lock(root):
        info = engine.container_inspect(req.name or "")
        labels = ((info or {}).get("Config") or {}).get("Labels") or {}
        running = bool(((info or {}).get("State") or {}).get("Running"))
        if info is not None and (labels.get(f"{LABEL}.kind") != KIND
                                 or labels.get(HOME_LABEL) != req.labels[HOME_LABEL]):
            raise AishellError(f"a container named {req.name} exists that is not this home's "
                               "egress service; aishell leaves it alone",
                               hint=f"remove or rename it (`{engine.cli} rm -f {req.name}`), "
                               "then launch again")
        if info is not None and running and labels.get(CONFIG_LABEL) == req.labels[CONFIG_LABEL]:
            return Service(str(info["Id"]), str(labels.get(INSTANCE_LABEL, "")))
        if info is not None:  # stopped, dying or configured otherwise: a fresh one
            with contextlib.suppress(EngineNotFound):
                engine.remove_container(str(info["Id"]), force=True)
            _wait_gone(ctx, req.name or "")
        try:
            created = engine.create_sandbox(req, {})
            engine.start_container(created)
        except EngineError as exc:
            raise AishellError(f"could not start the egress service {req.name}: {exc}",
                               hint="the sandbox was not started; see docs/troubleshooting.md"
                               " (allowlist mode)") from exc
        service = Service(created, token)
        _wait_marker(ctx, root / "service", service, "start")
    return service


def _wait_marker(ctx: Context, marker: Path, service: Service, what: str) -> None:
    """Until ``marker`` holds ``service``'s token; fail closed when it stops or is slow.

    Raises:
        AishellError: the service stopped, or did not write it within READY_TIMEOUT.
    """
    engine = ctx.engine
    name = service_name(ctx)
    deadline = time.monotonic() + READY_TIMEOUT
    checked = time.monotonic()
    failed = marker.with_name("failed")
    while True:
        with contextlib.suppress(OSError):
            if marker.read_text(encoding="utf-8") == service.token:
                return
        with contextlib.suppress(OSError):
            reason = failed.read_text(encoding="utf-8").strip()
            raise AishellError(f"the egress service could not {what}: {reason}",
                               hint=f"see `{engine.cli} logs {name}`; the sandbox was not started")
        now = time.monotonic()
        if now - checked > 0.5:  # a service that stopped will never answer: say so now
            checked = now
            info = engine.container_inspect(service.container) or {}
            if not (info.get("State") or {}).get("Running"):
                raise AishellError(f"the egress service {name} stopped before it could "
                                   f"{what}", hint=f"see `{engine.cli} logs {name}`; "
                                   "the sandbox was not started")
        if now > deadline:
            raise AishellError(f"the egress service {name} did not {what} within "
                               f"{READY_TIMEOUT:g} s",
                               hint=f"see `{engine.cli} logs {name}`; the sandbox was not started")
        time.sleep(0.002)


def _wait_gone(ctx: Context, name: str, timeout: float = 15.0) -> None:
    """Until the removed service's name is free (auto-remove may still be under way)."""
    deadline = time.monotonic() + timeout
    while ctx.engine.container_inspect(name) is not None and time.monotonic() < deadline:
        time.sleep(0.05)


def attach(ctx: Context, egress_id: str, service: Service, *, conf: str | None = None,
           filter_text: str = "", brokers: Sequence[Mapping[str, str]] = (),
           keys: Mapping[str, Sequence[tuple[str, str]]] | None = None) -> None:
    """Give ``egress_id`` what its sandbox reaches through ``service``: a proxy (tinyproxy's
    ``conf`` and ``filter_text``, allowlist mode) and ``brokers`` (each with its ``keys``:
    header and value, handed over the control socket, never written here); return once
    they serve.

    Raises:
        AishellError: the service refused the keys, did not serve in time, or stopped
            (fail closed: the sandbox is not started).
    """
    lay = layout_of(ctx)
    if brokers:
        send_keys(ctx, egress_id, keys or {})
    final = lay.policy_dir(egress_id)
    tmp = final.parent / f".{egress_id}.tmp"
    tmp.mkdir(mode=0o700)
    if conf is not None:
        (tmp / "tinyproxy.conf").write_text(conf, encoding="utf-8")
        (tmp / "filter").write_text(filter_text + "\n", encoding="utf-8")
    doc = {"proxy": conf is not None, "brokers": [dict(b) for b in brokers]}
    (tmp / "policy.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    lay.socket_dir(egress_id).mkdir(mode=0o700, exist_ok=True)
    tmp.replace(final)
    with contextlib.suppress(EngineError):
        ctx.engine.signal_container(service.container, "USR1")
    _wait_marker(ctx, lay.ready(egress_id), service, "serve this sandbox")


def send_keys(ctx: Context, egress_id: str, keys: Mapping[str, Sequence[tuple[str, str]]]) -> None:
    """Hand the brokers' keys to the running service over its control socket (a Unix
    socket in the home's 0700 egress directory): no file, no engine call, no argv.

    Raises:
        AishellError: the service could not be reached or refused them.
    """
    message = json.dumps({"id": egress_id, "keys": {k: [list(h) for h in v]
                                                    for k, v in keys.items()}})
    root = layout_of(ctx).root
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(10)
            _connect(conn, root / "control.sock")
            conn.sendall(message.encode() + b"\n")
            answer = conn.makefile("rb").readline().decode("utf-8", "replace").strip()
    except OSError as exc:
        raise AishellError(f"could not hand the keys to the egress service: {exc}",
                           hint=f"see `{ctx.engine.cli} logs {service_name(ctx)}`; "
                           "the sandbox was not started") from exc
    if answer != "ok":
        raise AishellError(f"the egress service refused the keys ({answer or 'no answer'})",
                           hint="the sandbox was not started; see docs/security.md, Credentials")


def _connect(conn: socket.socket, path: Path) -> None:
    """``connect`` to a socket whose path may be longer than AF_UNIX allows (108 bytes):
    through /proc/self/fd of its directory then."""
    if len(os.fsencode(path)) < 100:
        conn.connect(str(path))
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        conn.connect(f"/proc/self/fd/{fd}/{path.name}")
    finally:
        os.close(fd)


def detach(ctx: Context, egress_id: str) -> None:
    """Remove ``egress_id``'s policy and socket directory (its proxy and brokers stop
    with them)."""
    lay = layout_of(ctx)
    for path in (lay.policy_dir(egress_id), lay.socket_dir(egress_id)):
        shutil.rmtree(path, ignore_errors=True)
    # No wake-up: the service stops the policy's processes on its next scan (within a
    # second), and the sandbox that used them has gone already.


def proxy_log(ctx: Context, egress_id: str) -> str | None:
    """The log of ``egress_id``'s proxy so far (None: no such policy)."""
    try:
        return layout_of(ctx).log(egress_id).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _age(path: str, now: float) -> float:
    try:
        return now - Path(path).stat().st_mtime
    except OSError:
        return 0.0


def sweep(ctx: Context, *, now: float | None = None) -> list[str]:
    """Remove every policy of this home whose sandbox no longer runs (older than
    :data:`ORPHAN_AGE`), and the per-sandbox proxies and networks of the design before
    the service; the egress ids removed."""
    try:
        containers = ctx.engine.list_containers({EGRESS_LABEL: ""}, all=True)
    except EngineError:
        return []
    gone = _sweep_policies(ctx.paths, containers, time.time() if now is None else now)
    return sorted({*gone, *_sweep_sidecars(ctx.engine, containers)})


def _live(containers: Sequence[Mapping[str, Any]]) -> set[str]:
    """The egress ids of the sandboxes that run."""
    return {_label(c, EGRESS_LABEL) for c in containers
            if _label(c, f"{LABEL}.kind") == "sandbox" and c.get("State") == "running"}


def _sweep_policies(paths: Paths, containers: Sequence[Mapping[str, Any]], now: float) -> list[str]:
    live = _live(containers)
    root = layout(paths.state).root
    gone: list[str] = []
    for parent in (root / "policies", root / "sockets"):
        with contextlib.suppress(OSError):
            for entry in os.scandir(parent):
                egress_id = entry.name.lstrip(".").removesuffix(".tmp")
                if egress_id not in live and _age(entry.path, now) > ORPHAN_AGE:
                    shutil.rmtree(entry.path, ignore_errors=True)
                    gone.append(egress_id)
    return gone


def _sweep_sidecars(engine: Engine, containers: Sequence[Mapping[str, Any]]) -> list[str]:
    live = _live(containers)
    ids: set[str] = set()
    with contextlib.suppress(EngineError):
        for item in (*containers, *engine.list_networks({EGRESS_LABEL: ""})):
            if _label(item, f"{LABEL}.kind") in (KIND_PROXY, KIND_NETWORK):
                ids.add(_label(item, EGRESS_LABEL))
    for egress_id in sorted(ids - live - {""}):
        with contextlib.suppress(EngineError):
            engine.remove_container(f"aishell-egress-{egress_id}-proxy", force=True)
        with contextlib.suppress(EngineError):
            engine.remove_network(f"aishell-egress-{egress_id}")
    return sorted(ids - live - {""})


def collect(paths: Paths, engine: Engine, containers: Sequence[Mapping[str, Any]], *,
            dry_run: bool, now: float | None = None) -> list[str]:
    """gc's part: this home's egress service when no sandbox uses it, removed (listed when
    ``dry_run``), once the policies of sandboxes that have gone are swept (and the
    proxies and networks of the design before the service). Another home's service is
    that home's to collect; one whose home is gone exits after its idle timeout."""
    now = time.time() if now is None else now
    if not dry_run:
        _sweep_policies(paths, containers, now)
        _sweep_sidecars(engine, containers)
    live = _live(containers)
    policies: list[str] = []
    with contextlib.suppress(OSError):
        policies = [e.path for e in os.scandir(layout(paths.state).root / "policies")
                    if e.name.lstrip(".").removesuffix(".tmp") in live
                    or _age(e.path, now) <= ORPHAN_AGE]
    if policies:
        return []
    idle = [str(c["Id"]) for c in containers
            if _label(c, f"{LABEL}.kind") == KIND and _label(c, f"{LABEL}.managed") == "1"
            and _label(c, HOME_LABEL) == str(paths.state)]
    if not dry_run:
        for container in idle:
            with contextlib.suppress(EngineNotFound, EngineConflict):
                engine.remove_container(container, force=True)
    return idle


def stop(ctx: Context) -> bool:
    """Remove the home's service; whether one was there."""
    try:
        ctx.engine.remove_container(service_name(ctx), force=True)
    except (EngineNotFound, EngineConflict):
        return False
    return True


def _label(item: Mapping[str, Any], key: str) -> str:
    return str((item.get("Labels") or {}).get(key) or "")
