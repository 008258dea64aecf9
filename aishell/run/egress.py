"""The egress proxy of ``[network] mode = "allowlist"``: what it is, as plain data (pure).

A sandbox in allowlist mode sits alone on an engine network created ``--internal`` (the
engine gives it no route out; aishell never touches iptables). Its one way out is a
sidecar container running Debian's tinyproxy, attached to that network and to the
engine's default network. tinyproxy admits ``CONNECT`` (ports 443 and 80) and plain
HTTP requests only to host names matching the allow list — by name, so DNS changes
and IPv6 need nothing from aishell, and it never sees inside TLS. Everything else gets
a 403 from the proxy and a ``Proxying refused on filtered domain`` line in its log.

This module builds the sidecar's config and filter, the variables that point the
sandbox at it, and reads denials back from the log; :mod:`aishell.run.sidecar` runs
it on the engine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from aishell.project.network import NetworkConfig

PORT = 8888
LOG_PATH = "/tmp/aishell-proxy.log"  # noqa: S108 - inside the sidecar, which is ours alone
FILTER_PATH = "/tmp/aishell-proxy.filter"  # noqa: S108
LABEL = "dev.aishell.egress"  # the egress id, on the sandbox, its sidecar and its network
KIND_PROXY = "egress-proxy"
KIND_NETWORK = "egress-network"
# A filter that matches no host name (tinyproxy skips blank lines; an empty allow list
# must still deny everything).
NOTHING = r"^aishell-allows-no-host\.invalid$"
_DENIED = re.compile(r'Proxying refused on filtered domain "([^"]*)"')
_BAD_PORT = re.compile(r"Refused CONNECT method on port (\d+)")
READY = "Starting main loop. Accepting connections."


@dataclass(frozen=True)
class Egress:
    """One sandbox's proxy: the internal network, the sidecar and what it admits."""

    id: str  # 12 hex chars, random per launch
    allow: tuple[str, ...]
    upstream: str | None = None
    image: str = ""  # the proxy image's tag (filled in once it exists)

    @property
    def network(self) -> str:
        return f"aishell-egress-{self.id}"

    @property
    def sidecar(self) -> str:
        return f"aishell-egress-{self.id}-proxy"


def new_egress(net: NetworkConfig) -> Egress:
    return Egress(os.urandom(6).hex(), net.allow, net.upstream)


def filter_regex(pattern: str) -> str:
    """The anchored extended regex tinyproxy matches a host name against.

    ``api.openai.com`` → ``^api\\.openai\\.com$``; ``*.openai.com`` → anything before
    ``.openai.com`` (not ``openai.com`` itself), the same rule as
    :func:`aishell.project.network.matches`. Patterns are checked host names (letters,
    digits, ``-`` and ``.``), so a dot is the only character to escape.
    """
    if pattern.startswith("*."):
        return r"^.+\." + pattern[2:].replace(".", r"\.") + "$"
    return "^" + pattern.replace(".", r"\.") + "$"


def filter_text(allow: Sequence[str]) -> str:
    return "\n".join([filter_regex(p) for p in allow] or [NOTHING])


def tinyproxy_conf(upstream: str | None) -> str:
    """tinyproxy's configuration: deny by default, the filter decides by host name."""
    lines = [
        f"Port {PORT}",
        "Listen 0.0.0.0",
        "Timeout 600",
        "MaxClients 200",
        f'LogFile "{LOG_PATH}"',
        "LogLevel Info",  # denials are NOTICE; Info also says when it is ready
        "DisableViaHeader Yes",
        "FilterDefaultDeny Yes",
        f'Filter "{FILTER_PATH}"',
        "FilterURLs Off",  # match the host name, never the path (CONNECT has none)
        "FilterType ERE",
        "FilterCaseSensitive Off",
        "ConnectPort 443",
        "ConnectPort 80",
    ]
    if upstream:
        lines.append(f"Upstream http {upstream}")
    return "\n".join(lines) + "\n"


def sidecar_env(egress: Egress) -> dict[str, str]:
    """What the sidecar's start script writes to its config files."""
    return {"AISHELL_PROXY_CONF": tinyproxy_conf(egress.upstream),
            "AISHELL_PROXY_FILTER": filter_text(egress.allow)}


def sandbox_env(proxy_ip: str) -> dict[str, str]:
    """The variables that send the sandbox's HTTP(S) through the proxy: curl, wget,
    Python, Go and npm read them; Node's own fetch with NODE_USE_ENV_PROXY (Node >= 24)."""
    host = f"[{proxy_ip}]" if ":" in proxy_ip else proxy_ip
    url = f"http://{host}:{PORT}"
    local = "localhost,127.0.0.1,::1"
    return {"HTTP_PROXY": url, "HTTPS_PROXY": url, "http_proxy": url, "https_proxy": url,
            "NO_PROXY": local, "no_proxy": local, "NODE_USE_ENV_PROXY": "1"}


def denied(log: str) -> list[str]:
    """Every refused request in a tinyproxy log, in order: the host name (or
    ``port N`` for a CONNECT to a port other than 443 and 80)."""
    out: list[str] = []
    for line in log.splitlines():
        m = _DENIED.search(line)
        if m:
            out.append(m.group(1).lower())
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
