"""`aishell check --network`: the allowlist's promise, probed from inside a real sandbox.

For a project in allowlist mode, one ``aishell exec`` of it runs :data:`PROBE` with
python3 in the sandbox. It asks the proxy for an allowed host
(reached), for a host no list admits (``aishell-probe.invalid``, refused by name: the
proxy answers 403 without a DNS lookup), and dials every address of the engine host
directly: the gateway of every engine network and, for a local engine, every address of
this machine's interfaces. A dial counts as reaching the host when it connects or is
refused (a refusal is an answer from the host); only "no route" or a timeout count as
unreachable.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from aishell import process
from aishell.errors import EngineError
from aishell.project import network
from aishell.project.context import Context
from aishell.run.doctor import Finding

DENIED_PROBE = "aishell-probe.invalid"
PROBE_PORT = 9  # discard: nothing needs to listen, a refusal already proves a route
PROBE = r"""
import errno, json, socket, sys, urllib.error, urllib.request
allowed, denied, port, addrs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
out = {"allowed": None, "denied": None, "hosts": {}}
def fetch(host):
    try:
        return urllib.request.urlopen(f"https://{host}/", timeout=20).status
    except urllib.error.HTTPError as exc:
        return exc.code
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = str(reason)
        return 403 if "403" in text else text
if allowed:
    out["allowed"] = fetch(allowed)
out["denied"] = fetch(denied)
for addr in addrs:
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((addr, port))
        out["hosts"][addr] = "connected"
    except ConnectionRefusedError:
        out["hosts"][addr] = "refused"
    except OSError as exc:
        out["hosts"][addr] = errno.errorcode.get(exc.errno or 0, "timeout")
    finally:
        s.close()
print(json.dumps(out))
"""


def host_addresses(fib_trie: str, if_inet6: str) -> list[str]:
    """This machine's own addresses (not loopback): IPv4 from /proc/net/fib_trie's
    ``/32 host LOCAL`` entries, global IPv6 from /proc/net/if_inet6."""
    out: list[str] = []
    last = ""
    for line in fib_trie.splitlines():
        text = line.strip()
        if text.startswith(("|--", "+--")):
            last = text.split()[-1]
        elif text == "/32 host LOCAL" and last:
            out.append(last)
    for line in if_inet6.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[3] == "00":  # scope global
            out.append(str(ipaddress.IPv6Address(bytes.fromhex(fields[0]))))
    return sorted({a for a in out if not ipaddress.ip_address(a).is_loopback})


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return ""


def engine_addresses(ctx: Context) -> list[str]:
    """Every address of the engine host a sandbox could try: the engine networks'
    gateways, and this machine's interface addresses when the engine is local."""
    found: set[str] = set()
    with contextlib.suppress(EngineError):
        for net in ctx.engine.list_networks({}):
            for conf in ((net.get("IPAM") or {}).get("Config") or []):
                found.update(_gateway(conf or {}))
            for sub in net.get("subnets") or []:  # podman's libpod shape, when given
                gateway = str((sub or {}).get("gateway") or "")
                if gateway:
                    found.add(gateway)
    host = ctx.engine.docker_host or ""
    if not host or host.startswith("unix://"):
        found.update(host_addresses(_read("/proc/net/fib_trie"), _read("/proc/net/if_inet6")))
    return sorted(found, key=lambda a: (":" in a, a))


def _gateway(conf: dict[str, object]) -> list[str]:
    """A network's gateway; when the list omits it (Docker's default bridge), the first
    address of its subnet, which is where the engine puts it."""
    gateway = str(conf.get("Gateway") or "").split("/", maxsplit=1)[0]
    if gateway:
        return [gateway]
    with contextlib.suppress(ValueError):
        subnet = ipaddress.ip_network(str(conf.get("Subnet") or ""), strict=False)
        return [str(next(subnet.hosts()))]
    return []


def _allowed_host(allow: Iterable[str]) -> str:
    """The first allow entry the probe can ask for by name (no wildcard, default ports)."""
    return next((p for p in allow if not p.startswith("*.") and ":" not in p), "")


def probe(ctx: Context) -> list[Finding]:
    """Run the probe in an allowlist sandbox of this project; one finding per promise."""
    net = network.from_config(ctx.config, environ=os.environ)
    if not net.allowlist:
        return [Finding("warn", "network", f'{ctx.project} is in mode = "{net.mode}": nothing '
                        "to probe", 'set [network] mode = "allowlist" in aishell.toml')]
    out: list[Finding] = []
    addresses = engine_addresses(ctx)
    allowed = _allowed_host(net.allow)
    argv = [sys.executable, "-m", "aishell", "--quiet", "--project", str(ctx.project), "exec",
            "--", "python3", "-c", PROBE, allowed, DENIED_PROBE, str(PROBE_PORT), *addresses]
    result = process.run(argv, env=dict(os.environ), check=False)
    try:
        doc = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        detail = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
        return [*out, Finding("fail", "network probe", f"the probe sandbox did not run: {detail}")]
    return out + findings(doc, allowed, addresses)


def findings(doc: dict[str, object], allowed: str, addresses: Sequence[str]) -> list[Finding]:
    """The probe's answer, judged (pure)."""
    out: list[Finding] = []
    if not allowed:
        out.append(Finding("info", "allowed host", "the allow list names no plain host to ask "
                           "for; not probed"))
    elif doc.get("allowed") in (200, 301, 302, 303, 307, 308, 401, 404):
        out.append(Finding("ok", "allowed host", f"{allowed} reached through the proxy "
                           f"(HTTP {doc['allowed']})"))
    else:
        out.append(Finding("fail", "allowed host", f"{allowed} not reached: {doc.get('allowed')}",
                           "check the host's spelling, DNS and [network] upstream"))
    if doc.get("denied") == 403:
        out.append(Finding("ok", "denied host", f"{DENIED_PROBE} refused by the proxy (403)"))
    else:
        out.append(Finding("fail", "denied host", f"{DENIED_PROBE}: {doc.get('denied')}, "
                           "not the proxy's 403"))
    hosts = doc.get("hosts")
    answers = hosts if isinstance(hosts, dict) else {}
    reached = [a for a in addresses if answers.get(a) in ("connected", "refused")]
    if reached:
        out.append(Finding("fail", "engine host", f"reachable from the sandbox at "
                           f"{', '.join(reached)}", "see docs/security.md, Network modes"))
    else:
        out.append(Finding("ok", "engine host", f"unreachable at all {len(addresses)} "
                           f"address(es): {', '.join(addresses)}"))
    return out
