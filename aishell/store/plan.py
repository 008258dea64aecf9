"""What populating an env volume does, as plain data: files to write and one install script.

Pure code. Given a lock and a platform, :func:`plan` says which tarballs must be in the
download cache and produces, for each harness, the ``package.json`` and the
``package-lock.json`` that ``npm ci`` installs — with every ``resolved`` URL rewritten
to the tarball's place in the cache (mounted read-only at ``/cache``), so the install
needs no network and npm still checks every tarball against its locked integrity.

Layout inside the env volume (mounted at ``/tools``)::

    node/            the pinned Node.js (bin/node, …)
    npm/             the pinned npm
    h/<harness>/     package.json, package-lock.json, node_modules/ — one per harness,
                     so harnesses never share (or fight over) a dependency
    bin/             node, npm, npx and every harness bin (relative symlinks)

Install scripts are off for ``npm ci``; afterwards ``npm rebuild`` runs them for exactly
the required packages the lock marks ``has_install_script`` (claude and opencode put their native
binaries in place that way), which each harness's ``package.json`` also lists in
``allowScripts`` (npm 12 blocks every other dependency script).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from aishell.lock.closure import installed, locate
from aishell.lock.lockfile import Artifact, Lock, LockedHarness, to_package_lock

CACHE_MOUNT = "/cache"
PLAN_MOUNT = "/plan"
TOOLS = "/tools"

# integrity -> the tarball's path inside the population container (a ".tgz" name: npm
# tells a tarball from a directory by its extension)
Locate = Callable[[str], str]
# (harness, script package path) -> the recording proxy URL its install script uses
Proxies = Mapping[tuple[str, str], str]


@dataclass(frozen=True)
class Download:
    name: str  # package@version, for messages
    url: str
    integrity: str


@dataclass(frozen=True)
class HarnessInstall:
    name: str
    package: str
    bins: tuple[str, ...]
    package_json: dict[str, Any]
    package_lock: dict[str, Any]
    scripts: tuple[str, ...]  # install paths whose install scripts run
    fetches: tuple[Download, ...] = ()  # what its scripts downloaded at lock time
    network_install: bool = False  # allow-network-install: scripts get the real network


@dataclass(frozen=True)
class EnvPlan:
    platform: str
    node: Artifact
    npm: Artifact
    harnesses: tuple[HarnessInstall, ...]
    downloads: tuple[Download, ...]

    @property
    def replays(self) -> bool:
        """Whether population runs the replay server (a script runs without network)."""
        return any(h.scripts and not h.network_install for h in self.harnesses)

    def files(self, where: Locate, proxies: Proxies | None = None, *, ca: str | None = None,
              tls: Mapping[str, tuple[str, str]] | None = None) -> dict[str, str]:
        """Files to put in the plan directory (mounted at /plan), by name.

        ``proxies`` (capture, at lock time): the recording proxy of each (harness, script
        path); without it (population) the scripts fetch from the replay server. ``ca``:
        the container path of the CA the scripts trust for HTTPS through either;
        ``tls``: host -> (certificate, key) container paths the replay server serves as.
        """
        out = {"install.sh": install_script(self, where, proxies, ca)}
        if proxies is None and self.replays:
            out["fetches.json"] = json.dumps({
                "files": {d.url: where(d.integrity) for h in self.harnesses for d in h.fetches},
                "tls": {host: list(pair) for host, pair in (tls or {}).items()},
            }, indent=2, sort_keys=True)
            out["replay.js"] = resources.files("aishell.resources").joinpath(
                "replay.js").read_text(encoding="utf-8")
        for h in self.harnesses:
            out[f"{h.name}.package.json"] = json.dumps(
                {**h.package_json, "allowScripts": _allow_scripts(h, where)},
                indent=2, sort_keys=True)
            out[f"{h.name}.package-lock.json"] = json.dumps(
                _with_cache_urls(h.package_lock, where), indent=2, sort_keys=True)
        return out


def _harness_install(h: LockedHarness, platform: str) -> tuple[HarnessInstall, list[Download]]:
    root = f"aishell-env-{h.name}"
    wanted = installed(h.packages, h.package, platform)
    by_path = {p["path"]: p for p in h.packages}
    package_lock = to_package_lock(h, root)
    for path, entry in package_lock["packages"].items():
        optional = entry.get("optionalDependencies")
        if path and optional:
            # npm ci insists that every edge it sees is in the lockfile; a platform
            # package the registry never published (so npm left it out) must go too.
            entry["optionalDependencies"] = {
                dep: spec for dep, spec in optional.items()
                if locate(by_path, path, dep) is not None
            }
    downloads = [
        Download(f"{_name_of(p)}@{p.get('version')}", p["resolved"], p["integrity"])
        for p in wanted if not p.get("in_bundle") and "resolved" in p
    ]
    # Scripts of optional packages never run: they are native builds (node-gyp) that need
    # a toolchain the env deliberately does not get from the foundation, and npm itself
    # treats a failed optional package as absent. Running them would make an env's
    # content depend on the foundation image.
    scripts = tuple(p["path"] for p in wanted
                    if p.get("has_install_script") and not p.get("optional"))
    install = HarnessInstall(
        name=h.name,
        package=h.package,
        bins=h.bins,
        package_json={"name": root, "version": "0.0.0", "private": True,
                      "dependencies": {h.package: h.version}},
        package_lock=package_lock,
        scripts=scripts,
        fetches=tuple(Download(f"{f['package'].rsplit('node_modules/', 1)[-1]}: {f['url']}",
                               f["url"], f["integrity"]) for f in h.fetches_for(platform)),
        network_install=h.network_install,
    )
    return install, [*downloads, *install.fetches]


def _name_of(pkg: Mapping[str, Any]) -> str:
    return str(pkg.get("name") or pkg["path"].rsplit("node_modules/", 1)[-1])


def _allow_scripts(h: HarnessInstall, where: Locate) -> dict[str, bool]:
    """npm >= 12 runs a dependency's install script only when the root package allows it.

    Allow exactly the packages the lock marks as having one. npm names a package by its
    resolved source, which here is the integrity-named tarball in the cache: the approval
    is pinned to the exact content.
    """
    entries = h.package_lock["packages"]
    return {_cache_url(entries[path]["integrity"], where): True for path in h.scripts}


def _cache_url(integrity: str, where: Locate) -> str:
    return f"file:{where(integrity)}"


def _with_cache_urls(lock: dict[str, Any], where: Locate) -> dict[str, Any]:
    """The package-lock with each fetched tarball's URL pointing into /cache."""
    packages = {}
    for path, entry in lock["packages"].items():
        if path and "resolved" in entry and "integrity" in entry:
            packages[path] = {**entry, "resolved": _cache_url(entry["integrity"], where)}
        else:
            packages[path] = entry
    return {**lock, "packages": packages}


def plan(lock: Lock, platform: str) -> EnvPlan:
    """The population plan of ``lock`` on ``platform``."""
    installs: list[HarnessInstall] = []
    downloads: dict[str, Download] = {}
    node = lock.node[platform]
    for artifact in (node, lock.npm):
        downloads[artifact.integrity] = Download(f"{artifact.package}@{artifact.version}",
                                                 artifact.resolved, artifact.integrity)
    for h in sorted(lock.harnesses, key=lambda h: h.name):
        install, needed = _harness_install(h, platform)
        installs.append(install)
        for d in needed:
            downloads.setdefault(d.integrity, d)
    return EnvPlan(platform, node, lock.npm, tuple(installs),
                   tuple(sorted(downloads.values(), key=lambda d: d.name)))


def _proxy_env(url: str, ca: str | None) -> str:
    """Environment words that send an install script's HTTP(S) through ``url``: the
    variables curl, wget, Python and Go read, and Node's (NODE_USE_ENV_PROXY, Node >= 24);
    with ``ca``, the CA its HTTPS through that proxy is signed by (aishell.store.tlsmint)."""
    words = [f"{v}={url}" for v in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")]
    words += ["NO_PROXY=", "no_proxy=", "NODE_USE_ENV_PROXY=1"]
    if ca is not None:
        words += [f"NODE_EXTRA_CA_CERTS={ca}", f"SSL_CERT_FILE={ca}", f"CURL_CA_BUNDLE={ca}"]
    return "env " + " ".join(words)


def _rebuilds(h: HarnessInstall, proxies: Proxies | None, ca: str | None) -> list[str]:
    """One `npm rebuild` per script package, each with its proxy (which tells who fetched)."""
    out = []
    for path in h.scripts:
        name = shlex.quote(path.rsplit("node_modules/", 1)[-1])
        if h.network_install:
            prefix = ""
        elif proxies is not None:
            prefix = _proxy_env(proxies[(h.name, path)], ca) + " "
        else:
            prefix = _proxy_env('"http://127.0.0.1:$REPLAY_PORT"', ca) + " "
        out.append(f"  {prefix}$NPM rebuild --foreground-scripts --loglevel=error {name}")
    return out


_START_REPLAY = [
    # Files install scripts downloaded at lock time, served on this container's loopback
    # (the container has no other network); each was checked against its hash on the host.
    f'"$T/node/bin/node" {PLAN_MOUNT}/replay.js {PLAN_MOUNT}/fetches.json /tmp/aishell-replay.port &',
    "for _ in $(seq 100); do [ -s /tmp/aishell-replay.port ] && break; sleep 0.05; done",
    "REPLAY_PORT=$(cat /tmp/aishell-replay.port)",
]


def install_script(p: EnvPlan, where: Locate, proxies: Proxies | None = None,
                   ca: str | None = None) -> str:
    """The shell script a population container runs (foundation image, /tools writable)."""
    q = shlex.quote
    lines = [
        "set -eu",
        "umask 022",
        f"T={TOOLS}",
        'mkdir -p "$T/node" "$T/npm" "$T/h" "$T/bin"',
        (f'tar -xzf {q(where(p.node.integrity))} -C "$T/node" '
        "--strip-components=1 --no-same-owner"),
        (f'tar -xzf {q(where(p.npm.integrity))} -C "$T/npm" '
        "--strip-components=1 --no-same-owner"),
        'ln -s ../node/bin/node "$T/bin/node"',
        "for tool in npm npx; do",
        ('  printf \'#!/bin/sh\\nexec %s/node/bin/node %s/npm/bin/%s-cli.js "$@"\\n\' '
        '"$T" "$T" "$tool" > "$T/bin/$tool"'),
        '  chmod 0755 "$T/bin/$tool"',
        "done",
        'export PATH="$T/bin:$PATH" HOME=/tmp/aishell-home npm_config_cache=/tmp/aishell-npm-cache',
        "export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false",
        'NPM="$T/node/bin/node $T/npm/bin/npm-cli.js"',
    ]
    if proxies is None and p.replays:
        lines += _START_REPLAY
    # The harnesses install side by side (separate trees): unpacking their native
    # binaries is CPU-bound, so this takes about half the time on two cores.
    for i, h in enumerate(p.harnesses):
        d = f'"$T/h/{h.name}"'
        lines += [
            f"install_{i}() {{",
            f"  mkdir -p {d}",
            f"  cp {q(PLAN_MOUNT + '/' + h.name + '.package.json')} {d}/package.json",
            f"  cp {q(PLAN_MOUNT + '/' + h.name + '.package-lock.json')} {d}/package-lock.json",
            f"  cd {d}",
            "  $NPM ci --offline --ignore-scripts --no-audit --no-fund --loglevel=error",
        ]
        lines += _rebuilds(h, proxies, ca)
        lines += [
            "}",
            f"echo 'aishell: installing {h.name} ({h.package})'",
            f'( set -e; install_{i} ) > "/tmp/aishell-install-{i}.log" 2>&1 &',
            f"pid_{i}=$!",
        ]
    for i, h in enumerate(p.harnesses):
        lines += [
            f'if wait "$pid_{i}"; then status=0; else status=$?; fi',
            f'sed "s/^/  {h.name}: /" "/tmp/aishell-install-{i}.log"',
            f'[ "$status" = 0 ] || {{ echo "aishell: installing {h.name} failed" >&2; exit "$status"; }}',
        ]
        for b in h.bins:
            lines += [
                (f'test -e "$T/h/{h.name}/node_modules/.bin/{b}" || '
                 f'{{ echo "aishell: {h.package} has no bin {b}" >&2; exit 4; }}'),
                f'ln -sfn ../h/{h.name}/node_modules/.bin/{q(b)} "$T/bin/{b}"',
            ]
    # (envstore makes the tree world-readable once every step is done)
    lines.append("echo 'aishell: install complete'")
    return "\n".join(lines) + "\n"
