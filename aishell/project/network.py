"""The ``[network]`` table: how a sandbox may reach the network (pure).

``mode`` is ``"open"`` (the default: the engine's default network), ``"none"`` (no
network at all) or ``"allowlist"`` (only an HTTP(S) proxy that admits the hosts in
``allow``). ``allow`` holds exact host names and ``*.domain`` wildcards, each optionally
with a port (``host:8443``): without one, plain HTTP may go to port 80 and CONNECT (TLS)
to 443; with one, either may go to that port only. ``upstream`` names a proxy the egress
proxy forwards through (a corporate one).

Merge rule (SPEC 3.1, like every list): the global config's ``allow`` comes first, the
project's is appended; ``mode`` and ``upstream`` are scalars, so the project's replace
the global ones. A launch of a catalog harness then adds that harness's own hosts (its
API and its sign-in endpoints), so ``aishell claude`` works in allowlist mode with no
extra config. Each file is checked on its own, so a bad entry points at its line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aishell.errors import ConfigError
from aishell.project.config import Config, Source

MODES = ("open", "allowlist", "none")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_UPSTREAM = re.compile(r"^(?:http://)?(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>[0-9]{1,5})/?$")
HOST_HINT = ('write a host name ("registry.npmjs.org") or a wildcard ("*.openai.com"), '
             'optionally with a port ("host:8443"); no scheme or path')
UPSTREAM_HINT = 'write HOST:PORT, e.g. "proxy.corp.example:3128" (an http:// proxy)'


@dataclass(frozen=True)
class NetworkConfig:
    """The resolved ``[network]`` settings of one launch."""

    mode: str = "open"
    allow: tuple[str, ...] = ()  # normalised patterns, deduplicated, in order
    upstream: str | None = None  # host:port of a proxy to chain through

    @property
    def allowlist(self) -> bool:
        return self.mode == "allowlist"


HTTP_PORT = 80
TLS_PORT = 443


def split_port(pattern: str) -> tuple[str, int | None]:
    """``("host", 8443)`` of ``host:8443``; ``("host", None)`` of a pattern without one."""
    host, colon, port = pattern.rpartition(":")
    if not colon:
        return pattern, None
    return host, int(port)


def normalise_host(pattern: str) -> str:
    """``pattern`` lower-cased and checked: ``host.name`` or ``*.domain``, maybe ``:PORT``.

    Raises:
        ValueError: not a host name or wildcard (the message says why).
    """
    text = pattern.strip().lower()
    if "://" in text or "/" in text:
        raise ValueError(f"{pattern!r} is not a host name")
    host, colon, port = text.rpartition(":")
    if colon:
        if not (port.isdigit() and port.isascii() and 1 <= int(port) <= 65535):
            raise ValueError(f"{pattern!r}: the port must be a number from 1 to 65535")
        return f"{_normalise_name(pattern, host)}:{int(port)}"
    return _normalise_name(pattern, text)


def _normalise_name(pattern: str, text: str) -> str:
    body = text[2:] if text.startswith("*.") else text
    if ":" in body:
        raise ValueError(f"{pattern!r} is not a host name")
    if text in ("*", "*.") or "*" in body:
        raise ValueError(f"{pattern!r}: only a leading `*.` wildcard is supported"
                         " (mode = \"open\" allows every host)")
    if not _HOST.match(body) or len(body) > 253:
        raise ValueError(f"{pattern!r} is not a valid host name")
    return text


def matches(host: str, pattern: str) -> bool:
    """Whether ``host`` is named by ``pattern`` (its port aside): exact (case-insensitive),
    or for ``*.domain`` any name below ``domain`` at any depth (not ``domain`` itself)."""
    host = host.lower()  # a trailing dot is another name: refused, like the proxy does
    pattern = split_port(pattern)[0]
    if pattern.startswith("*."):
        domain = pattern[2:]
        return host.endswith("." + domain) and len(host) > len(domain) + 1
    return host == pattern


def allowed(host: str, patterns: Sequence[str], *, port: int = TLS_PORT,
            tls: bool = True) -> bool:
    """Whether a request to ``host:port`` is admitted: a pattern without a port admits
    CONNECT (``tls``) to 443 and plain HTTP to 80; one with a port admits that port."""
    default = TLS_PORT if tls else HTTP_PORT
    return any(matches(host, p) and (split_port(p)[1] or default) == port for p in patterns)


def url_pattern(url: str) -> str | None:
    """The allow entry that admits ``url``'s host and port (``host`` for its scheme's
    default port, ``host:port`` otherwise); None when it is not an http(s) URL."""
    from urllib.parse import urlsplit  # noqa: PLC0415 - only launches with a gateway

    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        return None
    if "*" in parts.hostname:  # a URL names one host: never widen the list to a wildcard
        return None
    default = TLS_PORT if parts.scheme == "https" else HTTP_PORT
    try:
        host = normalise_host(parts.hostname)
    except ValueError:
        return None
    return host if port in (None, default) else f"{host}:{port}"


def parse_upstream(value: str) -> str:
    """``host:port`` of an upstream proxy (``http://`` accepted and dropped).

    Raises:
        ValueError: not HOST:PORT.
    """
    m = _UPSTREAM.match(value.strip())
    if not m or not 1 <= int(m.group("port")) <= 65535:
        raise ValueError(f"upstream proxy {value!r} is not HOST:PORT")
    return f"{m.group('host')}:{int(m.group('port'))}"


def upstream_from_env(environ: Mapping[str, str]) -> str | None:
    """The host's own proxy (``HTTPS_PROXY``, then ``HTTP_PROXY``), as host:port."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        value = environ.get(name, "").strip()
        if value:
            try:
                return parse_upstream(value.rstrip("/").split("@")[-1].removeprefix("http://"))
            except ValueError:
                return None  # a proxy we cannot chain to (https://, socks): none
    return None


def check_source(source: Source) -> None:
    """The syntax of ``source``'s ``[network]`` values, with file and line in errors."""
    table = source.data.get("network")
    if not isinstance(table, dict):
        return
    for item in table.get("allow", ()):
        try:
            normalise_host(item)
        except ValueError as exc:
            raise ConfigError(f"[network] allow: {exc}", path=source.path,
                              line=source.item_line("network", "allow", item), hint=HOST_HINT) from exc
    if "upstream" in table:
        try:
            parse_upstream(table["upstream"])
        except ValueError as exc:
            raise ConfigError(f"[network] {exc}", path=source.path,
                              line=source.line_of("network", "upstream"), hint=UPSTREAM_HINT) from exc


def from_config(cfg: Config, *, harness_hosts: Sequence[str] = (),
                environ: Mapping[str, str] | None = None) -> NetworkConfig:
    """Check every file's ``[network]``, then resolve the merged one (plus the harness's
    default hosts; the upstream proxy from config, else from ``environ``)."""
    for source in cfg.sources:
        check_source(source)
    table = cfg.table("network")
    mode = str(table.get("mode", "open"))
    patterns = [normalise_host(p) for p in (*table.get("allow", ()), *harness_hosts)]
    upstream = table.get("upstream")
    chained = parse_upstream(upstream) if upstream else upstream_from_env(environ or {})
    return NetworkConfig(mode=mode, allow=tuple(dict.fromkeys(patterns)), upstream=chained)


def weakened(cfg: Config) -> str | None:
    """A warning when the project's aishell.toml loosens the global config's mode."""
    if len(cfg.sources) < 2 or cfg.manifest is None:
        return None
    glob = (cfg.sources[0].data.get("network") or {}).get("mode", "open")
    mine = (cfg.manifest.data.get("network") or {}).get("mode")
    if mine is None or MODES.index(mine) >= MODES.index(glob) or glob == "open":
        return None
    line = cfg.manifest.line_of("network", "mode")
    where = f"{cfg.manifest.path}:{line}" if line else str(cfg.manifest.path)
    return (f"{where}: [network] mode = {mine!r} loosens the global config's "
            f"mode = {glob!r} for this project")
