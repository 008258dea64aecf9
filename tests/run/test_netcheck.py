"""`aishell check --network` as data: the host's own addresses read from /proc, and the
probe's answer judged (pure)."""

from __future__ import annotations

from aishell.run import netcheck

FIB_TRIE = """\
Main:
  +-- 0.0.0.0/0 3 0 4
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
           |-- 127.0.0.1
              /32 host LOCAL
     +-- 172.17.0.0/16 2 0 2
           |-- 172.17.0.0
              /16 link UNICAST
           |-- 172.17.0.1
              /32 host LOCAL
        |-- 172.17.255.255
           /32 link BROADCAST
           |-- 192.0.2.2
              /32 host LOCAL
Local:
           |-- 192.0.2.2
              /32 host LOCAL
"""
IF_INET6 = """\
00000000000000000000000000000001 01 80 10 80       lo
fe8000000000000000fc00fffe000001 04 40 20 80     eth0
fd000000000000000000000000000002 04 40 00 82     eth0
"""


def test_the_hosts_own_addresses_leave_out_loopback_link_local_and_broadcast():
    assert netcheck.host_addresses(FIB_TRIE, IF_INET6) == ["172.17.0.1", "192.0.2.2", "fd00::2"]
    assert netcheck.host_addresses("", "") == []


def test_a_probe_that_reached_only_what_it_should_is_all_ok():
    doc = {"allowed": 200, "denied": 403,
           "hosts": {"172.17.0.1": "ENETUNREACH", "fd00::2": "ENETUNREACH"}}
    found = netcheck.findings(doc, "registry.npmjs.org", ["172.17.0.1", "fd00::2"])
    assert [(f.status, f.subject) for f in found] == [
        ("ok", "allowed host"), ("ok", "denied host"), ("ok", "engine host")]


def test_a_refused_dial_is_an_answer_from_the_host_and_fails_the_check():
    doc = {"allowed": 200, "denied": 403,
           "hosts": {"172.17.0.1": "refused", "192.0.2.2": "ENETUNREACH", "10.0.0.1": "connected"}}
    found = netcheck.findings(doc, "registry.npmjs.org", ["10.0.0.1", "172.17.0.1", "192.0.2.2"])
    (host,) = [f for f in found if f.subject == "engine host"]
    assert host.status == "fail"
    assert host.detail == "reachable from the sandbox at 10.0.0.1, 172.17.0.1"


def test_a_denied_host_that_is_not_the_proxys_403_fails():
    found = netcheck.findings({"allowed": "timed out", "denied": 200, "hosts": {}}, "a.example", [])
    assert [(f.status, f.subject) for f in found][:2] == [
        ("fail", "allowed host"), ("fail", "denied host")]


def test_an_allow_list_of_wildcards_or_ports_has_no_host_to_ask_for():
    assert netcheck._allowed_host(["*.npmjs.org", "dev.example:8443", "pypi.org"]) == "pypi.org"
    assert netcheck._allowed_host(["*.npmjs.org"]) == ""
    found = netcheck.findings({"denied": 403, "hosts": {}}, "", [])
    assert (found[0].status, found[0].subject) == ("info", "allowed host")
