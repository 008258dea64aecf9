"""The people and JSON renderings of gc and `store ls` (the JSON keys are a contract)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from aishell.cli.store import compact_roots, print_gc, print_listing
from aishell.store.engineroots import Home
from aishell.store.gc import Candidate, GcResult
from aishell.store.listing import Listing, StoreItem
from aishell.store.roots import Dangling

T = datetime(2026, 11, 1, tzinfo=UTC)


def _result(**kw) -> GcResult:
    return GcResult(**{**_base(), **kw})


def _base():
    return dict(  # noqa: C408 - keyword form mirrors the dataclass fields
        dry_run=False, older_than=timedelta(hours=1), keep_generations=3, max_freed=None,
        candidates=(
            Candidate("volume", "env", "e" * 64, "aishell-env-" + "e" * 24, 5_000_000, 5_000_000, T, None,
                      "removed"),
            Candidate("image", "foundation", "sha256:" + "f" * 64, "aishell-foundation:" + "a" * 32,
                      400_000_000, 9_000, T, T, "removed"),
            Candidate("volume", "env", "d" * 64, "aishell-env-" + "d" * 24, 0, 0, T, None, "too-young",
                      "created less than 1h ago"),
        ),
        reachable=4, dropped_roots=(Dangling("/src/old", "project directory no longer exists"),),
        dropped_generations=1, tarballs=2, tarball_bytes=1000, lock_copies=0,
        freed_bytes=405_001_000, layers_freed=None, stopped_early=False, warnings=(), seconds=0.25,
    )


def test_gc_json_contract(capsys):
    print_gc(_result(), as_json=True, quiet=False)
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "aishell.gc" and doc["version"] == 1
    assert set(doc) == {
        "schema", "version", "dry_run", "older_than_seconds", "keep_generations", "max_freed",
        "candidates", "reachable", "dropped_roots", "dropped_generations", "tarballs",
        "tarball_bytes", "lock_copies", "freed_bytes", "freed_unique_bytes", "measured_freed_bytes",
        "layers_freed", "stopped_early", "warnings", "seconds", "home_ttl_seconds", "homes",
        "capture_containers", "egress_services",
    }
    assert set(doc["candidates"][0]) == {"type", "kind", "id", "name", "size", "unique", "created",
                                         "last_used", "status", "detail"}
    assert doc["freed_unique_bytes"] == 5_000_000 + 9_000 + 1000


def test_gc_text_reports_removals_drops_and_bytes(capsys):
    print_gc(_result(), as_json=False, quiet=False)
    out = capsys.readouterr().out
    assert "dropped dangling root /src/old (project directory no longer exists)" in out
    assert "dropped 1 generation(s) beyond the newest 3 per project" in out
    assert "removed 2 item(s):" in out and "aishell-env-eeeeeeeeeeee" in out
    assert "kept (grace period)" in out
    assert "removed 2 unreferenced download-cache file(s) (1.0 kB)" in out
    assert "freed between 5.0 MB and 405.0 MB (images share layers)" in out


def test_gc_text_uses_the_measured_figure(capsys):
    print_gc(_result(layers_freed=300_000_000), as_json=False, quiet=False)
    assert "freed 305.0 MB (measured by the engine)" in capsys.readouterr().out


def test_store_ls_text(capsys):
    item = StoreItem("volume", "env", "e" * 64, "aishell-env-" + "e" * 24, 188_700_000, 188_700_000, T,
                     T, ("project:/src/api", "project:/src/web", "pin:rel", "generation:/src/api#2"))
    listing = Listing((item,), 188_700_000, 0, 2, 1, (("aishell-env-" + "e" * 24, 2),), (), 0, 0, ())
    print_listing(listing, as_json=False)
    out = capsys.readouterr().out
    assert "projects api, web; generation api#2; pin rel" in out
    assert "sharing: 2 project(s) → 1 env(s)" in out


def test_compact_roots_caps_long_lists():
    labels = [f"container:c{n}" for n in range(6)]
    assert compact_roots(labels) == "containers c0, c1, c2, c3 +2"
    assert compact_roots([]) == "-- (unreachable)"


def _home(owner: str, seen: datetime, *, expired: bool = False, by: str = "heartbeat") -> Home:
    return Home("0123456789abcdef", owner, seen, by, ("e" * 64,), ("sha256:" + "f" * 64,),
                ("aishell-gcroot-0123456789abcdef-seen-x",), expired)


def test_gc_reports_expired_homes_and_lists_the_others_in_a_dry_run(capsys):
    now = datetime.now(UTC)
    homes = (_home("uid 1500 /home/bob/.local/state/aishell", now - timedelta(days=45), expired=True),
             _home("uid 1000 /home/ada/.local/state/aishell", now - timedelta(hours=3), by="markers"))
    print_gc(_result(homes=homes, home_ttl=timedelta(days=30)), as_json=False, quiet=False)
    out = capsys.readouterr().out
    assert ("removed the gc roots of home uid 1500 /home/bob/.local/state/aishell: last seen 45 "
            "days ago, longer than [store] gc_home_ttl 30d; its 2 item(s) are no longer kept") in out
    assert "other aishell homes" not in out  # the table is the dry run's
    print_gc(_result(homes=homes, dry_run=True), as_json=False, quiet=False)
    out = capsys.readouterr().out
    assert "would remove the gc roots of home uid 1500" in out
    assert "other aishell homes on this engine, 2:" in out
    row = next(line for line in out.splitlines() if "uid 1000" in line)
    assert "3 hours ago (markers)" in row and "1 env(s), 1 image(s)" in row
    assert any(line.startswith("  uid 1500") and line.endswith("expired: keeps nothing")
               for line in out.splitlines())
    print_gc(_result(homes=homes), as_json=True, quiet=False)
    doc = json.loads(capsys.readouterr().out)
    assert doc["home_ttl_seconds"] == 30 * 86400
    assert set(doc["homes"][0]) == {"id", "owner", "last_seen", "seen_by", "env_ids", "image_ids",
                                    "volumes", "expired"}


def test_gc_reports_capture_leftovers_and_their_bytes(capsys):
    capture = Candidate("volume", "capture", "aishell-capture-1", "aishell-capture-1", 2_500_000,
                        2_500_000, T, None, "removed")
    print_gc(_result(candidates=(capture,), capture_containers=1), as_json=False, quiet=False)
    assert ("removed 1 capture volume(s) (2.5 MB) and 1 container(s) left by interrupted "
            "`aishell lock` runs") in capsys.readouterr().out


def test_store_ls_lists_other_homes_and_what_they_keep(capsys):
    item = StoreItem("volume", "env", "e" * 64, "aishell-env-" + "e" * 24, 1000, 1000, T, T,
                     ("home:uid 1500 /home/bob/.local/state/aishell",))
    listing = Listing((item,), 1000, 0, 0, 0, (), (), 0, 0, (),
                      homes=(_home("uid 1500 /home/bob/.local/state/aishell", T),))
    print_listing(listing, as_json=False)
    out = capsys.readouterr().out
    assert "home uid 1500" in out
    assert "other aishell homes on this engine, 1 (their roots keep items here too):" in out
    assert compact_roots(["home:uid 1500 /a", "home:uid 1000 /b"]) == "homes uid 1500, uid 1000"
