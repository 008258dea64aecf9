"""The egress sidecar on the engine: started before a sandbox, removed after it.

Per sandbox, one internal network and one proxy container, named and labelled by a
random egress id (``dev.aishell.egress``), so that nothing depends on which launch
created what. Order: the network (``--internal``), the sidecar created on it and then
connected to the engine's default network as well (the one way out), started, and
waited for until tinyproxy accepts connections; its address on the internal network
is what the sandbox's ``HTTP(S)_PROXY`` point at. An IP address, not a name: Podman's
internal networks (CNI) have no DNS, and the sandbox needs none to reach its proxy.

Removal (:func:`remove`) takes the sidecar, then the network, once the sandbox has
gone. A foreground launch does it when the engine CLI returns (also after Ctrl-C or a
failed create); a detached sandbox's sidecar goes with ``aishell stop``, and
:func:`sweep` — run by ``aishell ps``, ``stop`` and every allowlist launch — removes
any sidecar and network whose sandbox no longer runs (a killed aishell, a detached
sandbox whose harness exited on its own).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aishell import render
from aishell.errors import AishellError, EngineConflict, EngineError, EngineNotFound
from aishell.project.context import Context
from aishell.request import ContainerRequest
from aishell.run import egress as proxy
from aishell.run.egress import Egress
from aishell.run.sandbox import LABEL

READY_TIMEOUT = 20.0
ORPHAN_AGE = 120.0  # seconds: younger sidecars may belong to a launch still starting


def _labels(ctx: Context, egress: Egress, kind: str) -> dict[str, str]:
    return {f"{LABEL}.managed": "1", f"{LABEL}.kind": kind, proxy.LABEL: egress.id,
            f"{LABEL}.project": str(ctx.project)}


def sidecar_request(ctx: Context, egress: Egress) -> ContainerRequest:
    """The proxy container: the proxy image's entrypoint, nobody, no capabilities."""
    return ContainerRequest(
        image=egress.image, name=egress.sidecar, env=proxy.sidecar_env(egress),
        labels=_labels(ctx, egress, proxy.KIND_PROXY), network=egress.network,
        interactive=False, remove=False, init=True, hostname="aishell-proxy",
        security_opts=("no-new-privileges",), user="65534:65534", cap_drop=("ALL",),
    )


def start(ctx: Context, egress: Egress) -> str:
    """Start ``egress``'s network and sidecar; the proxy's address on that network.

    Raises:
        AishellError: the proxy did not come up (its log's last lines are in the message).
    """
    engine = ctx.engine
    engine.create_network(egress.network, internal=True,
                          labels=_labels(ctx, egress, proxy.KIND_NETWORK))
    created = engine.create_sandbox(sidecar_request(ctx, egress), {})
    engine.connect_network(engine.default_network(), created)
    engine.start_container(created)
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        log = _read_log(ctx, egress.sidecar)
        if log is not None and proxy.READY in log:
            break
        info = engine.container_inspect(created) or {}
        if not (info.get("State") or {}).get("Running") or time.monotonic() > deadline:
            tail = "; ".join((log or "").strip().splitlines()[-3:]) or "no log"
            raise AishellError(f"the egress proxy {egress.sidecar} did not start: {tail}",
                               hint=f"see `{engine.cli} logs {egress.sidecar}`")
        time.sleep(0.02)
    info = engine.container_inspect(created) or {}
    networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
    address = str((networks.get(egress.network) or {}).get("IPAddress") or "")
    if not address:
        raise AishellError(f"the egress proxy {egress.sidecar} has no address on "
                           f"{egress.network}", hint="see docs/troubleshooting.md")
    return address


def _read_log(ctx: Context, sidecar: str) -> str | None:
    try:
        data = ctx.engine.read_file(sidecar, proxy.LOG_PATH)
    except EngineError:
        return None
    return None if data is None else data.decode("utf-8", "replace")


def denied_hosts(ctx: Context, egress_id: str) -> list[str] | None:
    """The hosts the sidecar of ``egress_id`` refused so far (None: no such sidecar)."""
    log = _read_log(ctx, f"aishell-egress-{egress_id}-proxy")
    return None if log is None else proxy.denied(log)


def remove(ctx: Context, egress_id: str, *, sandbox: str | None = None,
           wait: float = 15.0, warn: bool = True) -> None:
    """Remove the sidecar and network of ``egress_id`` (and ``sandbox``, a container
    this launch created, which has exited but may not be removed yet). What cannot be
    removed now is left to :func:`sweep`, with a warning."""
    engine = ctx.engine
    name = f"aishell-egress-{egress_id}"
    for ref in (sandbox, f"{name}-proxy"):
        if ref:
            with contextlib.suppress(EngineNotFound, EngineConflict):
                engine.remove_container(ref, force=True)
    deadline = time.monotonic() + wait
    while True:
        try:
            engine.remove_network(name)
            return
        except EngineNotFound:
            return
        except EngineError as exc:
            # still in use: a container being removed right now (the sandbox's --rm)
            if time.monotonic() > deadline:
                if warn:
                    render.warn(f"could not remove the egress network {name} yet ({exc}); "
                                "`aishell ps` removes it once its sandbox has gone")
                return
            time.sleep(0.1)


def _created(value: Any) -> float:
    """A container's Created (seconds) or a network's (RFC 3339, maybe with nanoseconds)."""
    if isinstance(value, int | float):
        return float(value)
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)", str(value or ""))
    if not m:
        return time.time()  # unknown: as if brand new, never swept early
    return datetime.fromisoformat(m.group(1)).replace(tzinfo=UTC).timestamp()


def sweep(ctx: Context, *, now: float | None = None) -> list[str]:
    """Remove every sidecar and egress network whose sandbox is no longer running (and
    that is older than :data:`ORPHAN_AGE`); the egress ids removed."""
    engine = ctx.engine
    now = time.time() if now is None else now
    try:
        containers = engine.list_containers({proxy.LABEL: ""}, all=True)
        networks = engine.list_networks({proxy.LABEL: ""})
    except EngineError:
        return []
    live = {_label(c, proxy.LABEL) for c in containers
            if _label(c, f"{LABEL}.kind") == "sandbox" and c.get("State") == "running"}
    ids: dict[str, float] = {}
    for item in (*containers, *networks):
        kind = _label(item, f"{LABEL}.kind")
        if kind in (proxy.KIND_PROXY, proxy.KIND_NETWORK):
            egress_id = _label(item, proxy.LABEL)
            ids[egress_id] = max(ids.get(egress_id, 0.0), _created(item.get("Created")))
    gone = [e for e, created in sorted(ids.items())
            if e and e not in live and now - created > ORPHAN_AGE]
    for egress_id in gone:
        with contextlib.suppress(EngineError):
            remove(ctx, egress_id, wait=0.0, warn=False)
    return gone


def _label(item: Mapping[str, Any], key: str) -> str:
    return str((item.get("Labels") or {}).get(key) or "")
