"""The allowlist filter, property-tested: what the sandbox's tinyproxy admits is exactly what
:func:`aishell.project.network.allowed` says (pure, fast tier; the hand-picked cases are in
tests/run/test_egress.py).

Hypothesis generates allow lists (exact hosts, ``*.domain`` wildcards, optional ports, fed
through ``normalise_host``) and requests that are near misses of them, URLs that try to
smuggle another host past the filter, and gateway URLs whose ``url_pattern`` goes back into
an allow list. A filter that admits what the matcher refuses is an allowlist bypass; one
that refuses what it admits, a false refusal.

How tinyproxy 1.11 decides (src/reqs.c, src/filter.c): a request URL that starts with
``http://`` (any case) is plain HTTP, its target the text up to the first ``/``, less any
userinfo up to the first ``@``, less a ``:port``; any other URL of a CONNECT is ``host:port``
the same way. The filter (``FilterURLs On``) sees that raw URL, and a CONNECT must also name
a ``ConnectPort``. The filter's lines are POSIX EREs, compiled with ``REG_EXTENDED |
REG_ICASE | REG_NEWLINE | REG_NOSUB`` in the C locale (tinyproxy never calls setlocale). For
the subset the lines use (``^``, ``$``, literal letters, digits, ``-``, ``:`` and ``/``,
``\\.``, the class ``[a-z0-9-]``, groups, ``?``, ``+`` and ``*``) Python's ``re`` on bytes
with IGNORECASE means the same: bytes, so that case folding is ASCII-only as in the C locale
(on ``str``, ``[a-z]`` would match the Kelvin sign); MULTILINE for ``REG_NEWLINE``, though a
URL never holds a newline (tinyproxy reads the request line up to one), so none is
generated. The first property asserts that every filter line keeps to that subset.

The number of cases is the Hypothesis profile's (tests/conftest.py: ``ci`` by default);
``AISHELL_PROPERTY_EXAMPLES=10000`` runs that many of each instead. Each case checks many
requests (every near miss of every entry, at every port that matters), so that the default
run stays quick.
"""

from __future__ import annotations

import ipaddress
import os
import re
import string
from urllib.parse import urlsplit

from hypothesis import event, given, settings
from hypothesis import strategies as st

from aishell.project import network
from aishell.run import egress

_EXAMPLES = os.environ.get("AISHELL_PROPERTY_EXAMPLES")
examples = settings(max_examples=int(_EXAMPLES)) if _EXAMPLES else settings()

# Every filter line is made only of these tokens (and tinyproxy cuts a line at whitespace
# or `#`, neither of which is among them).
_ERE_SUBSET = re.compile(r"\^(?:[a-z0-9:/-]|\\\.|\[a-z0-9-\]\+|\(\\\.\[a-z0-9-\]\+\)\*"
                         r"|\(:[0-9]+\)\?)+\$?")


# -- the proxy, modelled ---------------------------------------------------------------------
class Proxy:
    """What tinyproxy admits with the filter and ConnectPorts of ``allow``."""

    def __init__(self, allow: list[str]) -> None:
        self.lines = egress.filter_text(allow).splitlines()
        self.filter = [re.compile(line.encode("ascii"), re.IGNORECASE | re.MULTILINE)
                       for line in self.lines]
        self.ports = set(egress.connect_ports(allow))

    def passes(self, url: str) -> bool:
        data = url.encode("utf-8", "surrogateescape")
        return any(line.search(data) for line in self.filter)

    def connect(self, host: str, port: int) -> bool:
        """``CONNECT host:port``: a ConnectPort, and the filter."""
        return port in self.ports and self.passes(f"{host}:{port}")

    def http(self, host: str, port: int, path: str = "", *, port_in_url: bool = False,
             scheme: str = "http") -> bool:
        """Plain HTTP for ``scheme://host[:port]/path``."""
        shown = "" if port == network.HTTP_PORT and not port_in_url else f":{port}"
        return self.passes(f"{scheme}://{host}{shown}/{path}")

    def admits(self, url: str) -> bool:
        """A request line's URL: plain HTTP when it starts with ``http://``, else a CONNECT
        (whose port must also be a ConnectPort)."""
        if not self.passes(url):
            return False
        target = tinyproxy_target(url)
        return target is None or not target[2] or target[1] in self.ports


def tinyproxy_target(url: str) -> tuple[str, int, bool] | None:
    """(host, port, tls) tinyproxy connects to for a request URL (reqs.c's extract_url):
    exact for what the filter can admit (a name, then decimal digits)."""
    plain = url[:7].lower() == "http://"
    rest = url[7:] if plain else url
    default = network.HTTP_PORT if plain else network.TLS_PORT
    host = rest.split("/", 1)[0]
    host = host.split("@", 1)[1] if "@" in host else host  # strchr: the first `@`
    port = default
    head, colon, digits = host.rpartition(":")
    if colon and "]" not in digits:
        host = head
        m = re.match(r"[0-9]{1,5}", digits)
        port = int(m.group()) if m and 0 < int(m.group()) <= 65535 else default
    return (host, port, not plain) if host else None


def urllib_target(url: str) -> tuple[str, int, bool] | None:
    """(host, port, tls) of the same URL as urllib reads it (None: it cannot)."""
    plain = url[:7].lower() == "http://"
    try:
        parts = urlsplit(url if plain else "//" + url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname, port or (network.HTTP_PORT if plain else network.TLS_PORT), not plain


def admitted_only_if_allowed(proxy: Proxy, allow: list[str], url: str) -> bool:
    """Whether ``proxy`` admits ``url``; when it does, where it goes (and where urllib
    reads it goes) must be allowed."""
    if not proxy.admits(url):
        return False
    # where tinyproxy connects, and where anything reading the URL like urllib would
    for target in (tinyproxy_target(url), urllib_target(url)):
        assert target is not None, (allow, url)
        host, port, tls = target
        assert network.allowed(host, allow, port=port, tls=tls), (allow, url, target)
    return True


# -- generators ------------------------------------------------------------------------------
LDH = string.ascii_lowercase + string.digits + "-"


def _label(n: int) -> str:
    """The label numbered ``n``: letters, digits and inner `-` (one draw makes a label)."""
    out = ""
    while n:
        n, digit = divmod(n, len(LDH))
        out += LDH[digit]
    return out.strip("-") or "0"


# Labels: a few that collide often, and any of up to 6 letters, digits and inner `-`.
LABEL = st.sampled_from(["a", "b", "x", "api", "com", "org", "openai", "0", "1", "a-b", "xn--a"]) \
    | st.integers(0, len(LDH) ** 6 - 1).map(_label)
NAME = st.lists(LABEL, min_size=1, max_size=3).map(".".join)
IPV4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
PORT = st.sampled_from([80, 443, 8080, 8443]) | st.integers(1, 65535)


def cased(text: str) -> st.SearchStrategy[str]:
    """``text`` with a random mix of upper and lower case."""
    return st.integers(0, 2 ** len(text) - 1).map(
        lambda up: "".join(c.upper() if up >> i & 1 else c for i, c in enumerate(text)))


@st.composite
def patterns(draw: st.DrawFn) -> str:
    """A valid allow entry, as the user might write it (case, spaces), normalised."""
    name = draw(NAME | IPV4)
    wild = draw(st.booleans())
    port = draw(st.none() | PORT)
    text = ("*." if wild else "") + name + (f":{port}" if port else "")
    before, after = draw(st.sampled_from([("", ""), ("", ""), (" ", ""), ("\t", "\n")]))
    pattern = network.normalise_host(before + draw(cased(text)) + after)
    assert pattern == text
    return pattern


ALLOW = st.lists(patterns(), max_size=4)
# Near misses of a host: the kinds, each made with a label (`x` when not drawn).
MUTATIONS = ("same", "prefix", "suffix", "glued-prefix", "glued-suffix", "dot-swap",
             "parent", "trailing-dot", "upper", "idna-label", "idna-prefix", "hyphen-label",
             "hyphen-end")
REQUEST_LABEL = LABEL | st.sampled_from(["-", "--", "x-", "-x"])


def near(host: str, how: str, label: str = "x") -> str:
    """The near miss ``how`` of ``host``."""
    first, dot, rest = host.partition(".")
    return {
        "prefix": f"{label}.{host}", "suffix": f"{host}.{label}",
        "glued-prefix": f"{label}{host}",  # xopenai.com
        "glued-suffix": f"{host}{label}",  # openai.comx
        "dot-swap": f"{first}{label[:1]}{rest}" if dot else host,  # an unescaped `.`
        "parent": rest or host,  # openai.com of *.openai.com
        "trailing-dot": f"{host}.", "upper": host.upper(),
        "idna-label": f"xn--{label}.{host}",
        "idna-prefix": f"xn--{host}",  # a first label rewritten as a punycode one
        "hyphen-label": f"-.{host}", "hyphen-end": f"{first}-{dot}{rest}",
    }.get(how, host)


def bases(allow: list[str], label: str = "x") -> list[str]:
    """The host of each entry, and for a wildcard its domain and a name right below it."""
    out: list[str] = []
    for pattern in allow:
        host = network.split_port(pattern)[0]
        out += [host.removeprefix("*."), host.replace("*", label, 1)] if host.startswith("*.") \
            else [host]
    return out


@st.composite
def near_misses(draw: st.DrawFn, allow: list[str]) -> tuple[str, str]:
    """A request host close to (or equal to) one the allow list names, and how it was made."""
    kind = draw(st.sampled_from(["near"] * 6 + ["fresh", "ipv4", "ipv6"]))
    if kind == "ipv6":
        return draw(st.sampled_from(["[::1]", "[2001:db8::1]", "::1", "[::ffff:1.2.3.4]"])), kind
    if kind == "ipv4":
        return draw(IPV4), kind
    if kind == "fresh" or not allow:
        return draw(NAME), "fresh"
    host = draw(st.sampled_from(bases(allow, draw(REQUEST_LABEL))))
    hows = draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=2))
    for how in hows:
        host = draw(cased(host)) if how == "upper" else near(host, how, draw(REQUEST_LABEL))
    return host, "+".join(hows)


PATH = st.text(alphabet=string.ascii_letters + string.digits + "-._~/?#@:%!$&'()*+,;=",
               max_size=12)
# Characters no allow entry can hold (an underscore, an empty label, non-ASCII, `/`, `@`):
# the matcher may be looser than the filter with them in a name (a false refusal of what is
# not a host name), but never the other way round.
ODD = st.text(alphabet="_.@/:%\\ \t\rſıİ\u212aü-", min_size=1, max_size=3)


# -- the filter is the matcher ---------------------------------------------------------------
@examples
@given(allow=ALLOW, data=st.data(), port=PORT, path=PATH, odd=ODD)
def test_tinyproxy_admits_exactly_what_the_matcher_allows(allow, data, port, path, odd):
    proxy = Proxy(allow)
    scheme = data.draw(st.sampled_from(["http", "HTTP", "Http"]), label="scheme")
    for line in proxy.lines:
        assert _ERE_SUBSET.fullmatch(line), line  # what Python's re stands in for
    drawn = data.draw(st.lists(near_misses(allow), min_size=1, max_size=3), label="requests")
    listed = {network.HTTP_PORT, network.TLS_PORT, *(p for a in allow if (p := network.split_port(a)[1]))}
    # every near miss of every entry, at every listed port; the drawn ones at the drawn port too
    hosts = {near(b, how): listed for b in bases(allow) for how in MUTATIONS}
    hosts.update({h: {*listed, port} for h, _ in drawn})
    for host, ports in hosts.items():
        for p in ports:
            connect = network.allowed(host, allow, port=p, tls=True)
            plain = network.allowed(host, allow, port=p, tls=False)
            assert proxy.connect(host, p) is connect, (allow, f"CONNECT {host}:{p}")
            for port_in_url in (False, True):
                assert proxy.http(host, p, path, port_in_url=port_in_url, scheme=scheme) is plain, (
                    allow, f"GET {scheme}://{host}:{p}/{path} (port shown: {port_in_url})")
    for host, how in drawn:
        admitted = any(network.allowed(host, allow, port=p, tls=tls)
                       for p in hosts[host] for tls in (True, False))
        event(f"{how.split('+')[0]}: {'admitted' if admitted else 'refused'}")
        # the same host with odd characters in it: before, after, as a label, inside
        # (where a `/`, `@` or `:` moves what tinyproxy takes for the host, that host counts)
        for bent in (f"{odd}{host}", f"{host}{odd}", f"{odd}.{host}", f"{host[:1]}{odd}{host[1:]}"):
            for p in hosts[host]:
                admitted_only_if_allowed(proxy, allow, f"{bent}:{p}")
                admitted_only_if_allowed(proxy, allow, f"{scheme}://{bent}:{p}/{path}")
                if p == network.HTTP_PORT:
                    admitted_only_if_allowed(proxy, allow, f"{scheme}://{bent}/{path}")


# -- smuggling another host ------------------------------------------------------------------
# {a}: an allowed name, {p}: its port, {e}: another host, {d}: {a} with each `.` as `%2e`.
SMUGGLE_SHAPES = (
    "{a}", "{a}:{p}",  # the controls: admitted (as a CONNECT, to the right port)
    "{a}@{e}", "{a}:{p}@{e}", "{a}%40{e}", "{e}/{a}", "{e}/{a}:{p}", "{e}:{p}/{a}:{p}",
    "{a}.{e}", "{a}:{p}.{e}", "{e}.{a}", "{e}\\{a}", "{a}\\@{e}", "{a}\\.{e}", "{e}#{a}",
    "{e}#@{a}", "{a}#@{e}", "{e}?{a}", "{a}?@{e}", "{a} @{e}", "{a}\t.{e}", "{a}\r{e}",
    "{a} {e}", "{d}", "{d}%2e{e}", "{e}%2f{a}", "{a}%2f@{e}", "{a}:{p}:{p}@{e}", "{a}:0{p}",
    "{a}:{p}x", "{a}:+{p}", "{a}: {p}", "{a}:", "{a}:{p}/", "{a}:{p}#", "[{a}]:{p}",
    "{a}:{p}@{e}:{p}", "{e}@{a}:{p}", "{a}..{e}", "{a}/.{e}",
)
# plain HTTP with each tail, in two cases; a CONNECT as it stands
SCHEMES = {"http://": ("", "/", "/x", "/{a}", "/@{a}", "?{a}", "#{a}"), "HTTP://": ("/",),
           "": ("",)}
JUNK_PIECE = st.sampled_from(["@", ":", "/", "\\", "#", "?", "%2e", "%40", "%2f", ".", " ",
                              "\t", "\r", ":443", ":80", "//", "..", "[", "]"])


@examples
@given(allow=st.lists(patterns(), min_size=1, max_size=3), data=st.data(),
       evil=NAME | st.sampled_from(["evil.example", "evil.example.", "127.0.0.1"]), port=PORT)
def test_a_url_that_smuggles_another_host_is_admitted_only_for_an_allowed_host(allow, data, evil,
                                                                                port):
    proxy = Proxy(allow)
    host, listed = network.split_port(data.draw(st.sampled_from(allow), label="entry"))
    a = host.replace("*", data.draw(LABEL, label="below"), 1)
    p = listed or port
    fields = {"a": a, "e": evil, "p": p, "d": a.replace(".", "%2e")}
    # every shape, plain and CONNECT, with every tail
    urls = [(scheme + shape + tail).format(**fields) for shape in SMUGGLE_SHAPES
            for scheme, tails in SCHEMES.items() for tail in tails]
    admitted = [url for url in urls if admitted_only_if_allowed(proxy, allow, url)]
    # the allowed name, as a well-formed URL, is (the test is not vacuous)
    assert {f"http://{a}/", f"http://{a}:{p}/", f"{a}:{p}"} & set(admitted), (allow, a, p)
    # and a free mix of the pieces
    pieces = st.sampled_from([a, evil, f"{a}:{p}", f"{evil}:{p}"]) | JUNK_PIECE
    mix = "".join(data.draw(st.lists(pieces, min_size=2, max_size=6), label="mix"))
    for scheme in SCHEMES:
        admitted_only_if_allowed(proxy, allow, scheme + mix)
    event(f"{'over' if len(admitted) > 20 else 'up to'} 20 of {len(urls)} URLs admitted")


# -- a gateway's URL, back as an allow entry -------------------------------------------------
@st.composite
def gateway_urls(draw: st.DrawFn) -> tuple[str, str, int | None, bool]:
    """An http(s) URL, its host, its port as written and whether it is TLS; now and then
    one that names no single host and port (a `*.` host, port 0)."""
    scheme = draw(st.sampled_from(["http", "https"]))
    host = draw(NAME | IPV4 | NAME.map("*.{}".format))
    default = network.TLS_PORT if scheme == "https" else network.HTTP_PORT
    port = draw(st.none() | st.sampled_from([default, 0]) | PORT)
    userinfo = draw(st.sampled_from(["", "user@", "user:pw@"]))
    rest = draw(st.sampled_from(["", "/", "/v1", "/v1/", "?x=1", "#frag", "/v1?key=a.b@c"]))
    url = (f"{draw(cased(scheme))}://{userinfo}{draw(cased(host))}"
           f"{'' if port is None else f':{port}'}{rest}")
    url = draw(st.sampled_from(["", " "])) + url + draw(st.sampled_from(["", " ", "\n"]))
    return url, host, port, scheme == "https"


@examples
@given(gateway=gateway_urls(), other=NAME, other_port=PORT)
def test_a_gateway_url_becomes_an_entry_for_exactly_its_host_and_port(gateway, other, other_port):
    url, host, written, tls = gateway
    entry = network.url_pattern(url)
    if "*" in host or written == 0:
        assert entry is None, (url, entry)  # no single host and port: no entry at all
        return
    port = written or (network.TLS_PORT if tls else network.HTTP_PORT)
    assert entry is not None, url
    assert network.normalise_host(entry) == entry  # a valid allow entry as it stands
    assert network.allowed(host, [entry], port=port, tls=tls), (url, entry)
    proxy = Proxy([entry])
    assert (proxy.connect if tls else proxy.http)(host, port), (url, entry)
    # nothing else: no other host, no other port of the same protocol
    for h in {other, *(near(host, how) for how in MUTATIONS)} - {host, host.upper()}:
        assert not network.allowed(h, [entry], port=port, tls=tls), (url, entry, h)
    for p in {other_port, 80, 443, port + 1} - {port}:
        assert not network.allowed(host, [entry], port=p, tls=tls), (url, entry, p)


# Found by the properties above: a gateway URL once widened the list to a wildcard.
def test_a_gateway_url_with_a_wildcard_host_is_not_an_entry():
    assert network.url_pattern("https://*.evil.example/") is None


# Found by the properties above: port 0 once made an entry from_config rejected unhandled.
def test_a_gateway_url_with_port_0_is_not_an_entry():
    entry = network.url_pattern("http://gw.example:0/")
    assert entry is None or network.normalise_host(entry) == entry
