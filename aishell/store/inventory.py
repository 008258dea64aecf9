"""What the store holds in the engine: every volume and image labelled as aishell's.

Only objects carrying ``dev.aishell.managed`` are ever listed, so nothing a user or
another tool created can become a gc candidate. Sizes come from the engine's disk-usage
report (``docker system df -v``): a volume's ``UsageData.Size``, an image's ``Size``
(which counts layers it shares with other images; ``unique`` is what only it uses).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aishell.engine import Engine

MANAGED = "dev.aishell.managed"
KIND = "dev.aishell.kind"
ENV_ID = "dev.aishell.env-id"
ENV_VOLUME_PREFIX = "aishell-env-"
NO_TAG = "<none>:<none>"


@dataclass(frozen=True)
class Item:
    """One store object: an env volume or an image."""

    type: str  # "volume" | "image"
    kind: str  # the dev.aishell.kind label: env, foundation, extension, … ("?" when absent)
    key: str  # what the engine removes: the volume name or the image id
    id: str  # the env id (volumes) or the image id (images)
    name: str  # the volume name, or the image's first tag ("<none>" when dangling)
    size: int  # bytes; -1 when the engine did not report it
    unique: int  # bytes only this item uses (images share layers); -1 when unknown
    created: datetime
    tags: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def dangling(self) -> bool:
        return self.type == "image" and not self.tags


def _created_volume(value: Any) -> datetime:
    """Volume CreatedAt is RFC 3339 (``2026-11-23T13:24:27Z``, maybe with a zone offset)."""
    text = str(value or "")
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)  # unknown age: treat as brand new, so never swept early
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _env_id(name: str, labels: Mapping[str, str]) -> str:
    return labels.get(ENV_ID) or name.removeprefix(ENV_VOLUME_PREFIX)


def _matches(labels: Mapping[str, str] | None, wanted: Mapping[str, str]) -> bool:
    have = labels or {}
    return all(k in have and (not v or have[k] == v) for k, v in wanted.items())


def collect(engine: Engine, *, label_filter: Mapping[str, str] | None = None) -> list[Item]:
    """Every aishell volume and image (also those carrying ``label_filter``, when given).

    Args:
        engine: the engine.
        label_filter: extra labels an item must carry (tests confine gc to their own items).
    """
    wanted = {MANAGED: "", **(label_filter or {})}
    df = engine.system_df()
    volume_sizes = {
        str(v["Name"]): int((v.get("UsageData") or {}).get("Size", -1))
        for v in df.get("Volumes") or []
    }
    image_sizes = {
        str(i["Id"]): (int(i.get("Size", -1)), int(i.get("SharedSize", -1)))
        for i in df.get("Images") or []
    }
    items: list[Item] = []
    for v in engine.list_volumes(wanted):
        labels = v.get("Labels") or {}
        if not _matches(labels, wanted):
            continue
        name = str(v["Name"])
        size = volume_sizes.get(name, -1)
        items.append(Item("volume", labels.get(KIND, "?"), name, _env_id(name, labels), name,
                          size, size, _created_volume(v.get("CreatedAt")), (), labels))
    for i in engine.list_images(wanted):
        labels = i.get("Labels") or {}
        if not _matches(labels, wanted):
            continue
        image_id = str(i["Id"])
        tags = tuple(t for t in i.get("RepoTags") or () if t != NO_TAG)
        size, shared = image_sizes.get(image_id, (int(i.get("Size", -1)), -1))
        unique = size - shared if size >= 0 and shared >= 0 else size
        items.append(Item("image", labels.get(KIND, "?"), image_id, image_id,
                          tags[0] if tags else "<none>", size, unique,
                          datetime.fromtimestamp(int(i.get("Created", 0)), UTC), tags, labels))
    return items


def layers_size(engine: Engine) -> int:
    """Bytes every image layer on the engine takes (to measure what removing images freed)."""
    return int(engine.system_df().get("LayersSize") or 0)
