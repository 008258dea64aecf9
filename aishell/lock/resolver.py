"""Resolution: the manifest (plus the previous lock) into a new :class:`Lock`.

Top-level harness versions come from packuments. Each harness's transitive closure comes
from npm itself: a clean ``npm install --package-lock-only --ignore-scripts`` of a
synthetic package depending on the exact version, run with the pinned Node.js and npm
inside a container from the foundation image. npm's lockfile v3 lists every platform's
optional packages (with os/cpu/libc), so one run covers every platform.

What the previous lock already answers is reused (uv's rule): a harness whose spec did
not change keeps its closure, so an unchanged manifest re-locks without network I/O.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aishell import certs, process
from aishell.errors import AishellError, ProcessError
from aishell.lock import semver
from aishell.lock.foundation import PROXY_VARS, Foundation
from aishell.lock.lockfile import Artifact, Lock, LockedHarness, package_from_npm, to_package_lock
from aishell.lock.manifest import HarnessSpec, Manifest
from aishell.lock.registry import PackageNotFound, Registry, RegistryError
from aishell.lock.runtime import NODE_PACKAGES, resolve_node, resolve_npm, unpacked
from aishell.request import ContainerRequest, Mount, cli_args


class ResolutionError(AishellError):
    pass


@dataclass(frozen=True)
class Options:
    upgrade: bool = False
    upgrade_packages: Mapping[str, str | None] = field(default_factory=dict)  # name -> version


class EngineInfoView(Protocol):
    @property
    def arch(self) -> str: ...


class EngineView(Protocol):
    """What resolution needs of the engine it is handed (an :class:`aishell.engine.Engine`)."""

    @property
    def cli(self) -> str: ...

    def info(self) -> EngineInfoView: ...

    def image_inspect(self, ref: str) -> dict[str, Any] | None: ...


@dataclass
class Environment:
    """Everything resolution needs from outside: registry, cache, engine, image, CA bundle."""

    registry: Registry
    cache: Path
    engine: Callable[[], EngineView]  # lazily: a fresh lock never touches the engine
    image: Callable[[], str]  # the foundation image tag (built when missing)
    ca_bundle: Path | None = None
    on_status: Callable[[str], None] = lambda _msg: None


def foundation_inputs(manifest: Manifest) -> Foundation:
    return Foundation.from_settings(base=manifest.base, extra_packages=manifest.packages)


def template_hashes(foundation: Foundation) -> tuple[str, str]:
    inputs = foundation.inputs()
    return str(inputs["template"]), str(inputs["entrypoint"])


def choose_version(registry: Registry, spec: HarnessSpec, pinned: str | None) -> str:
    """The version to lock for ``spec`` (``pinned`` from ``--upgrade-package NAME@VER``)."""
    try:
        doc = registry.packument(spec.package)
    except PackageNotFound as exc:
        raise PackageNotFound(spec.at(f"{exc.message} (harness `{spec.name}`)"),
                              hint=exc.hint) from exc
    versions = list(doc["versions"])
    tags = doc.get("dist-tags") or {}
    if pinned is not None:
        if pinned not in doc["versions"]:
            raise ResolutionError(
                f"{spec.package}@{pinned} does not exist",
                hint="nearest published: " + ", ".join(semver.nearest(versions, pinned)),
            )
        if spec.requested not in ("latest", *tags) and not semver.Range.parse(
                spec.requested).test(semver.Version.parse(pinned)):
            raise ResolutionError(
                spec.at(f"{spec.name}@{pinned} is outside the range {spec.requested!r}"),
                hint=f"change the range first: aishell add {spec.name}@{pinned}",
            )
        return pinned
    chosen = semver.pick(versions, spec.requested, tags)
    if chosen is None:
        if semver.valid_range(spec.requested):
            near = ", ".join(semver.nearest(versions, spec.requested))
            what = f"no version of {spec.package} matches {spec.requested!r}"
        else:
            near = ", ".join(sorted(tags))
            what = f"{spec.package} has no dist-tag {spec.requested!r}"
        raise ResolutionError(spec.at(f"{what} (harness `{spec.name}`)"),
                              hint=f"nearest published: {near}" if near else None)
    return str(chosen)


def resolve(manifest: Manifest, previous: Lock | None, env: Environment,
            options: Options = Options()) -> Lock:
    """A lock for ``manifest``, reusing ``previous`` wherever the manifest did not change."""
    for name in options.upgrade_packages:
        if manifest.harness(name) is None and name not in ("node", "npm"):
            raise ResolutionError(f"--upgrade-package {name}: no harness of that name",
                                  hint="harnesses: " + ", ".join(h.name for h in manifest.harnesses))
    platforms = sorted(manifest.platforms)
    foundation = foundation_inputs(manifest)
    template, entrypoint = template_hashes(foundation)

    # Runtime: reuse unless its range or the platforms changed, or an upgrade asks.
    runtime_moves = options.upgrade or "node" in options.upgrade_packages \
        or "npm" in options.upgrade_packages
    if (previous is not None and not runtime_moves and previous.node_requested == manifest.node
            and sorted(previous.platforms) == platforms):
        node, npm = dict(previous.node), previous.npm
    else:
        env.on_status(f"resolving Node.js {manifest.node} and npm")
        pinned_node = options.upgrade_packages.get("node")
        if pinned_node and not (semver.is_exact(pinned_node) and semver.Range.parse(
                manifest.node).test(semver.Version.parse(pinned_node))):
            raise ResolutionError(f"--upgrade-package node@{pinned_node}: not a version within "
                                  f"[runtime] node = {manifest.node!r}")
        try:
            node = resolve_node(env.registry, pinned_node or manifest.node, platforms)
        except RegistryError:
            raise
        except AishellError as exc:  # no Node.js matches the range
            raise ResolutionError(manifest.at("runtime.node", exc.message), hint=exc.hint) from exc
        npm = resolve_npm(env.registry, next(iter(node.values())).version,
                          options.upgrade_packages.get("npm"))

    # Harnesses: reuse each unchanged one; pick versions for the rest.
    kept: list[LockedHarness] = []
    wanted: dict[str, tuple[HarnessSpec, str]] = {}
    seeds: dict[str, LockedHarness] = {}  # old closures npm should prefer (uv's preferences)
    for spec in manifest.harnesses:
        old = previous.harness(spec.name) if previous else None
        moves = options.upgrade or spec.name in options.upgrade_packages
        if (old is not None and not moves and old.package == spec.package
                and old.requested == spec.requested and old.wanted_bins == spec.bins
                and old.network_install == spec.network_install):
            kept.append(old)
            continue
        env.on_status(f"resolving {spec.name} ({spec.package}@{spec.requested})")
        version = choose_version(env.registry, spec, options.upgrade_packages.get(spec.name))
        wanted[spec.name] = (spec, version)
        if old is not None and not moves and old.package == spec.package:
            seeds[spec.name] = old

    resolved = _closures(wanted, seeds, node, npm, env) if wanted else []

    # Foundation: the base image's digest is looked up only when its inputs change.
    same_foundation = previous is not None and previous.base == manifest.base \
        and tuple(previous.extra_packages) == manifest.packages
    if same_foundation and previous is not None and previous.base_digests and not options.upgrade:
        digests = dict(previous.base_digests)
    else:
        try:
            digests = _base_digests(env.engine(), manifest.base)
        except ResolutionError as exc:
            raise ResolutionError(manifest.at("foundation.base", exc.message),
                                  hint=exc.hint) from exc
    return Lock(
        platforms=tuple(platforms),
        node_requested=manifest.node,
        node=node,
        npm=npm,
        base=manifest.base,
        extra_packages=manifest.packages,
        template=template,
        entrypoint=entrypoint,
        base_digests=digests,
        harnesses=tuple(sorted([*kept, *resolved], key=lambda h: h.name)),
    )


def _base_digests(engine: EngineView, base: str) -> dict[str, str]:
    """{platform: digest} for the base image the engine has (its local id without a digest)."""
    image = engine.image_inspect(base)
    if image is None:
        raise ResolutionError(
            f"the base image {base} is not available to the engine",
            hint=f"`docker pull {base}` (or scripts/provision.sh), then lock again",
        )
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(str(image.get("Architecture")),
                                                      str(image.get("Architecture")))
    platform = f"{image.get('Os', 'linux')}/{arch}"
    repo = base.split("@", maxsplit=1)[0]
    if ":" in repo.rsplit("/", 1)[-1]:
        repo = repo.rsplit(":", 1)[0]
    digests = [d for d in image.get("RepoDigests") or []
               if d.split("@")[0] == repo or d.split("@")[0].endswith("/" + repo)]
    return {platform: digests[0].split("@", 1)[1] if digests else str(image["Id"])}


def _closures(wanted: Mapping[str, tuple[HarnessSpec, str]], seeds: Mapping[str, LockedHarness],
              node: Mapping[str, Artifact], npm: Artifact, env: Environment) -> list[LockedHarness]:
    """Each wanted harness's closure, from one container running npm once per harness.

    A harness whose spec changed starts from its old closure (as package-lock.json), so npm
    keeps every locked dependency that still fits; an upgraded one starts clean.
    """
    engine = env.engine()
    platform = f"linux/{engine.info().arch}"
    if platform not in NODE_PACKAGES:
        raise ResolutionError(f"the engine's platform {platform} has no Node.js package",
                              hint=f"supported: {', '.join(NODE_PACKAGES)}")
    host_node = node.get(platform) or resolve_node(
        env.registry, next(iter(node.values())).version, [platform])[platform]
    env.on_status(f"fetching Node.js {host_node.version} and npm {npm.version}")
    node_dir = unpacked(env.registry, env.cache, host_node)
    npm_dir = unpacked(env.registry, env.cache, npm)
    image = env.image()
    with tempfile.TemporaryDirectory(prefix="aishell-lock-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        for name, (spec, version) in wanted.items():
            d = work / "h" / name
            d.mkdir(parents=True)
            root = f"aishell-env-{name}"
            (d / "package.json").write_text(json.dumps({
                "name": root, "version": "0.0.0", "private": True,
                "dependencies": {spec.package: version},
            }, indent=2), encoding="utf-8")
            if name in seeds:
                (d / "package-lock.json").write_text(
                    json.dumps(to_package_lock(seeds[name], root), indent=2), encoding="utf-8")
        env.on_status("resolving the closure with npm: " + ", ".join(sorted(wanted)))
        try:
            run_npm(env, image, work, node_dir, npm_dir)
        except ResolutionError as exc:
            failed = re.search(r"aishell: npm failed in /work/h/([^/\s]+)/", exc.message)
            if failed is None or failed.group(1) not in wanted:
                raise
            name = failed.group(1)
            raise ResolutionError(wanted[name][0].at(f"harness `{name}`: {exc.message}"),
                                  hint=exc.hint) from exc
        out = []
        for name, (spec, version) in sorted(wanted.items()):
            lock_json = json.loads((work / "h" / name / "package-lock.json").read_text("utf-8"))
            out.append(_harness_from_npm(spec, version, lock_json, env.registry.url))
    return out


SCRIPT = """\
set -e
for dir in /work/h/*/; do
  cd "$dir"
  /opt/aishell/node/bin/node /opt/aishell/npm/bin/npm-cli.js install \\
    --package-lock-only --ignore-scripts --no-audit --no-fund --lockfile-version=3 \\
    --loglevel=error || { echo "aishell: npm failed in $dir" >&2; exit 3; }
done
"""


NPM = "/opt/aishell/node/bin/node /opt/aishell/npm/bin/npm-cli.js"


def run_npm(env: Environment, image: str, work: Path, node_dir: Path, npm_dir: Path, *,
            script: str = SCRIPT) -> None:
    """Run ``script`` (sh) in a container with the pinned Node.js and npm mounted, ``work`` at
    /work, the registry, proxy variables and CA bundle set, on the host's network."""
    mounts = [
        Mount(str(node_dir), "/opt/aishell/node", read_only=True),
        Mount(str(npm_dir), "/opt/aishell/npm", read_only=True),
        Mount(str(work), "/work"),
    ]
    variables = {
        "HOME": "/work/.home",
        "npm_config_cache": "/work/.npm-cache",
        "npm_config_registry": env.registry.url,
        "npm_config_update_notifier": "false",
        "npm_config_userconfig": "/work/.npmrc",  # empty: no user .npmrc leaks in
    }
    if env.ca_bundle is not None:
        mounts.append(Mount(str(env.ca_bundle), certs.CONTAINER_PATH, read_only=True))
        variables.update(certs.container_env())
    req = ContainerRequest(
        image=image,
        command=("-c", script),
        mounts=tuple(mounts),
        env=variables,
        env_passthrough=tuple(v for v in PROXY_VARS if os.environ.get(v)),
        labels={"dev.aishell.managed": "1", "dev.aishell.kind": "lock"},
        interactive=False,
        network="host",  # so a registry or proxy on the host's loopback is reachable
        extra_args=("--entrypoint", "/bin/sh", "--user", f"{os.getuid()}:{os.getgid()}"),
    )
    argv = cli_args(req, env.engine().cli)
    try:
        process.run(argv, env=req.process_env(), timeout=1800)
    except ProcessError as exc:
        raise ResolutionError(
            "npm could not resolve the closure:\n  "
            + "\n  ".join((exc.stderr.strip() or exc.stdout.strip()).splitlines()[-12:]),
            hint="a dependency may be missing from the registry, or the registry unreachable "
            "from the container (proxy? CA bundle?)",
        ) from exc


def _harness_from_npm(spec: HarnessSpec, version: str, lock_json: Mapping[str, object],
                      registry_url: str) -> LockedHarness:
    packages = lock_json.get("packages")
    if not isinstance(packages, dict):
        raise ResolutionError(f"npm wrote no packages for {spec.name}")
    closure = tuple(
        package_from_npm(path, entry) for path, entry in sorted(packages.items()) if path
    )
    root = packages.get(f"node_modules/{spec.package}") or {}
    if root.get("version") != version:
        raise ResolutionError(f"npm resolved {spec.package}@{root.get('version')}, not {version}")
    bin_map = root.get("bin") or {}
    provided = sorted(bin_map) if isinstance(bin_map, dict) else []
    if spec.bins:
        missing = [b for b in spec.bins if b not in provided]
        if missing:
            raise ResolutionError(
                spec.at(f"{spec.package}@{version} provides no command {', '.join(missing)} "
                        f"(harness `{spec.name}`)"),
                hint=f"it provides: {', '.join(provided) or 'none'}; fix `bin` in aishell.toml",
            )
    bins = tuple(spec.bins) or tuple(provided)
    return LockedHarness(spec.name, spec.requested, spec.package, version, registry_url, bins,
                         closure, wanted_bins=spec.bins, network_install=spec.network_install)


__all__ = ["Environment", "Options", "PackageNotFound", "ResolutionError", "resolve"]
