"""What an interrupted `aishell lock` leaves behind: capture volumes and their containers.

`aishell lock` records what install scripts download by running them once in a container
(``aishell-capture-*``, labelled ``dev.aishell.kind=capture``) that installs into a scratch
volume (``aishell-capture-*``, same labels; :mod:`aishell.store.fetch`). Both are removed
when the recording ends, Ctrl-C included, but a lock killed outright (SIGKILL, SIGTERM, a
closed terminal) leaves them. gc sweeps such a volume like any unreachable item (kind
``capture``: no root ever keeps one) once it is older than the grace period. The leftover
container would keep its volume in use for ever, so gc removes it first: once it is no
longer running and was created longer ago than both the grace period and
:data:`RECORDING_LIMIT` (a live lock kills its recording before that and removes the
container at once, so it never loses one it still reads).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from aishell.engine import Engine
from aishell.errors import EngineError

KIND = "capture"
# Longer than aishell.store.fetch.CAPTURE_TIMEOUT (30 minutes), after which a live lock
# kills its recording container and removes it (tests/store/test_gc_homes_engine.py checks).
RECORDING_LIMIT = timedelta(hours=1)
_STOPPED = ("created", "exited", "dead")


def leftover_containers(containers: Sequence[Mapping[str, Any]], *, cutoff: datetime,
                        now: datetime, label_filter: Mapping[str, str] | None = None
                        ) -> list[Mapping[str, Any]]:
    """The capture containers among ``containers`` that no live `aishell lock` owns."""
    limit = min(cutoff, now - RECORDING_LIMIT).timestamp()
    wanted = {"dev.aishell.managed": "1", "dev.aishell.kind": KIND, **(label_filter or {})}
    found = []
    for c in containers:
        labels = c.get("Labels") or {}
        if any(labels.get(k) != v for k, v in wanted.items()):
            continue
        if str(c.get("State", "")).lower() in _STOPPED and int(c.get("Created") or 0) < limit:
            found.append(c)
    return found


def remove_containers(engine: Engine, containers: Sequence[Mapping[str, Any]]) -> list[str]:
    """Remove the given stopped containers (never force); the ids of those removed."""
    removed = []
    for c in containers:
        with contextlib.suppress(EngineError):
            engine.remove_container(str(c["Id"]), force=False)
            removed.append(str(c["Id"]))
    return removed

