"""The egress policy of ``[network] mode = "allowlist"``: what it is, as plain data (pure).

A sandbox in allowlist mode runs with ``--network none``: loopback only, on every engine,
rootful or rootless, and aishell never touches the host's firewall. Its one way out is a
Unix socket of the home's egress service (:mod:`aishell.store.egressservice`), mounted
into the sandbox; the sandbox's entrypoint runs Debian's socat on ``127.0.0.1:3128``
carrying each connection to that socket, and ``HTTP(S)_PROXY`` point there. Behind the
socket, a tinyproxy of that sandbox's own admits ``CONNECT`` and plain HTTP requests only
to the hosts and ports of its allow list, matched on the request's URL (``host:443`` for
a CONNECT, ``http://host[:80]/…`` for plain HTTP), so DNS changes and IPv6 need nothing
from aishell, and it never sees inside TLS. Everything else gets a 403 and a
``Proxying refused on filtered url`` line in that proxy's log.

This module builds one sandbox's policy (tinyproxy's config and filter), the variables
that point the sandbox at its forwarder, and reads denials back from the log.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from aishell.project.network import HTTP_PORT, TLS_PORT, NetworkConfig, split_port
from aishell.run.credentials import Brokered
from aishell.store.egressservice import EGRESS_LABEL

PORT = 3128  # the forwarder inside the sandbox, on its loopback
SANDBOX_SOCKET_DIR = "/run/aishell-egress"  # where the sandbox sees its socket's directory
SOCKET = "proxy.sock"
LABEL = EGRESS_LABEL  # the egress id, on the sandbox
# A filter that matches no URL (tinyproxy skips blank lines; an empty allow list must
# still deny everything).
NOTHING = r"^aishell-allows-no-host\.invalid$"
_DENIED = re.compile(r'Proxying refused on filtered (?:url|domain) "([^"]*)"')
_BAD_PORT = re.compile(r"Refused CONNECT method on port (\d+)")
_URL = re.compile(r"^(?:http://)?([^/:]*)(?::(\d+))?")
# A host name inside the filter: letters, digits and `-` in dot-separated labels (never a
# `/`, `:` or `@`, so a wildcard cannot reach into a path, a port or a userinfo).
_NAME = r"[a-z0-9-]+(\.[a-z0-9-]+)*"


@dataclass(frozen=True)
class Egress:
    """One sandbox's policy: its id and what its proxy admits."""

    id: str  # 12 hex chars, random per launch
    allow: tuple[str, ...]
    upstream: str | None = None
    image: str = ""  # the egress service's image tag (filled in once it exists)
    proxy: bool = True  # allowlist mode: the proxy is the sandbox's one way out
    brokers: tuple[Brokered, ...] = ()  # credential brokers (any network mode)


def new_egress(net: NetworkConfig) -> Egress:
    return Egress(os.urandom(6).hex(), net.allow, net.upstream)


def _name_regex(host: str) -> str:
    if host.startswith("*."):
        return _NAME + r"\." + host[2:].replace(".", r"\.")
    return host.replace(".", r"\.")


def filter_regexes(pattern: str) -> list[str]:
    """The anchored extended regexes tinyproxy matches a request's URL against.

    ``api.openai.com`` → ``^http://api\\.openai\\.com(:80)?/`` (plain HTTP to 80) and
    ``^api\\.openai\\.com:443$`` (a CONNECT to 443); with a port, ``host:8443``, both go
    to that port only. ``*.openai.com`` names anything below ``openai.com`` (not
    ``openai.com`` itself), the rule of :func:`aishell.project.network.matches`.
    """
    host, port = split_port(pattern)
    name = _name_regex(host)
    if port is None:
        return [f"^http://{name}(:{HTTP_PORT})?/", f"^{name}:{TLS_PORT}$"]
    plain = f"(:{port})?" if port == HTTP_PORT else f":{port}"
    return [f"^http://{name}{plain}/", f"^{name}:{port}$"]


def filter_text(allow: Sequence[str]) -> str:
    return "\n".join([r for p in allow for r in filter_regexes(p)] or [NOTHING])


def connect_ports(allow: Sequence[str]) -> list[int]:
    """The ports a CONNECT may name at all (tinyproxy's own check, before the filter)."""
    return sorted({TLS_PORT, *(port for p in allow if (port := split_port(p)[1]))})


def tinyproxy_conf(allow: Sequence[str], upstream: str | None) -> str:
    """tinyproxy's configuration, deny by default, the filter decides on the URL; the
    service adds its own ``Port``, ``Listen``, ``LogFile`` and ``Filter`` lines."""
    lines = [
        "Timeout 600",
        "MaxClients 200",
        "LogLevel Info",  # denials are NOTICE; Info also logs each request
        "DisableViaHeader Yes",
        "FilterDefaultDeny Yes",
        "FilterURLs On",  # host and port: the URL of plain HTTP, host:port of a CONNECT
        # Lower case: tinyproxy 1.11 reads "ERE" as unknown and falls back to basic
        # regexes, where `(`, `?` and `+` are literal.
        "FilterType ere",
        "FilterCaseSensitive Off",
        *(f"ConnectPort {port}" for port in connect_ports(allow)),
    ]
    if upstream:
        lines.append(f"Upstream http {upstream}")
    return "\n".join(lines) + "\n"


def sandbox_env(egress: Egress | None = None) -> dict[str, str]:
    """The variables of a sandbox's egress: with a proxy, those that send its HTTP(S)
    through the proxy's forwarder (curl, wget, Python, Go and npm read them; Node's own
    fetch with NODE_USE_ENV_PROXY, Node >= 24); ``AISHELL_EGRESS_FORWARDS`` tells the
    entrypoint which loopback port to forward to which socket."""
    forwards = [f"{b.port}={b.provider}.sock" for b in (egress.brokers if egress else ())]
    env: dict[str, str] = {}
    if egress is None or egress.proxy:
        url = f"http://127.0.0.1:{PORT}"
        local = "localhost,127.0.0.1,::1"
        env = {"HTTP_PROXY": url, "HTTPS_PROXY": url, "http_proxy": url, "https_proxy": url,
               "NO_PROXY": local, "no_proxy": local, "NODE_USE_ENV_PROXY": "1"}
        forwards.insert(0, f"{PORT}={SOCKET}")
    return {**env, "AISHELL_EGRESS_FORWARDS": " ".join(forwards)}


def _denied_target(url: str) -> str:
    """``pypi.org`` of a refused request to a default port, ``host:8123`` otherwise."""
    m = _URL.match(url)
    if not m or not m.group(1):
        return url.lower()
    host, port = m.group(1).lower(), m.group(2)
    default = str(HTTP_PORT) if url.startswith("http://") else str(TLS_PORT)
    return host if port in (None, default) else f"{host}:{port}"


def denied(log: str) -> list[str]:
    """Every refused request in a tinyproxy log, in order: the host name (``host:port``
    for a port other than the default; ``port N`` for a CONNECT to a port no entry names)."""
    out: list[str] = []
    for line in log.splitlines():
        m = _DENIED.search(line)
        if m:
            out.append(_denied_target(m.group(1)))
            continue
        m = _BAD_PORT.search(line)
        if m:
            out.append(f"port {m.group(1)}")
    return out


def summary(hosts: Sequence[str], *, most: int = 5) -> str:
    """``3 denied: pypi.org (2), example.com`` — the last few distinct hosts."""
    if not hosts:
        return "no request was denied"
    counts: dict[str, int] = {}
    for h in hosts:
        counts[h] = counts.get(h, 0) + 1
    recent = list(dict.fromkeys(reversed(hosts)))[:most]
    shown = ", ".join(f"{h} ({counts[h]})" if counts[h] > 1 else h for h in recent)
    more = len(counts) - len(recent)
    return f"{len(hosts)} denied: {shown}" + (f" and {more} more" if more > 0 else "")
