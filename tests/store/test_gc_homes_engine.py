"""Two aishell homes on one engine (one of them run as uid 1500): gc in either never removes
the env the other one references (roots published on the engine, aishell.store.engineroots)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from aishell.paths import Paths
from aishell.store import engineroots
from aishell.store import listing as store_cmd
from aishell.store.gc import collect_garbage
from tests.fixtures_gc import Store, lock_text

pytestmark = pytest.mark.engine
UID = 1500
USER = "aishell-gc1500"

# Run as the other user: record the project's use, then gc confined to the test's items.
OTHER = """
import json, sys
from datetime import timedelta
from pathlib import Path
from aishell.engine import Engine
from aishell.paths import Paths
from aishell.store import engineroots, index
from aishell.store.gc import collect_garbage
home, project, env_id, label, step = sys.argv[1:6]
paths = Paths(config=Path(home)/"config", state=Path(home)/"state", cache=Path(home)/"cache")
engine = Engine()
lock = Path(project) / "aishell.lock"
if step == "sync":
    index.record_use(paths, Path(project), lock_path=lock, env_ids={"linux/amd64": env_id},
                     images=[], lock_bytes=lock.read_bytes())
    engineroots.publish_home(engine, paths)
elif step == "pin":  # what `aishell pin keep` does
    from aishell.store import listing
    listing.pin_project(paths, Path(project), "keep", engine=engine)
elif step == "unpin":
    from aishell.store import listing
    listing.unpin(paths, engine, "keep")
else:
    r = collect_garbage(paths, engine, older_than=timedelta(0),
                        label_filter={"dev.aishell.test-gc": label})
    print(json.dumps(sorted(c.name for c in r.removed)))
"""


@pytest.fixture
def other_user() -> Iterator[list[str]]:
    """argv prefix running python as uid 1500, a member of the engine socket's group."""
    gid = Path("/var/run/docker.sock").stat().st_gid
    if subprocess.run(["id", USER], capture_output=True, check=False).returncode != 0:
        subprocess.run(["useradd", "--uid", str(UID), "--create-home", USER], check=True)
    subprocess.run(["usermod", "-aG", str(gid), USER], check=True)
    python = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    assert python.exists(), "no system interpreter the other user can run"
    root = Path(tempfile.mkdtemp(prefix="aishell-gc1500-", dir="/tmp"))
    site = root / "site"
    shutil.copytree(sysconfig.get_paths()["purelib"], site, symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "mypy*", "_pytest", "pytest*",
                                                  "matplotlib*", "hypothesis*"))
    shutil.copytree(Path(__file__).resolve().parents[2] / "aishell", site / "aishell",
                    dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    root.chmod(0o755)
    yield ["runuser", "-u", USER, "--", "env", f"PYTHONPATH={site}", "PYTHONDONTWRITEBYTECODE=1",
           str(python), "-c", OTHER]
    shutil.rmtree(root, ignore_errors=True)


@dataclass
class HomeB:
    """The second home: uid 1500's own state directory and project, unreadable by others."""

    argv: list[str]
    home: Path
    project: Path
    tag: str

    @property
    def paths(self) -> Paths:
        return Paths(config=self.home / "config", state=self.home / "state", cache=self.home / "cache")

    def lock(self, env_ids: list[str]) -> Path:
        lock = self.project / "aishell.lock"
        lock.write_text(lock_text(env_ids), encoding="utf-8")
        os.chown(lock, UID, UID)
        return lock

    def run(self, step: str, env_id: str = "") -> str:
        r = subprocess.run([*self.argv, str(self.home), str(self.project), env_id, self.tag, step],
                           capture_output=True, text=True, timeout=120, check=False)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()


@pytest.fixture
def home_b(store: Store, other_user) -> Iterator[HomeB]:
    b_root = Path(tempfile.mkdtemp(prefix="aishell-homeb-", dir="/tmp"))
    os.chown(b_root, UID, UID)
    b_root.chmod(0o700)
    b = HomeB(other_user, b_root / "home", b_root / "proj", store.tag)
    for d in (b.home, b.project):
        d.mkdir()
        os.chown(d, UID, UID)
    try:
        yield b
    finally:
        remove_markers(store, b.paths)
        shutil.rmtree(b_root, ignore_errors=True)


def remove_markers(store: Store, paths: Paths) -> None:
    """Every marker and heartbeat a home published (the test made that home)."""
    for v in store.engine.list_volumes({engineroots.HOME: engineroots.home_id(paths)}):
        store.engine.remove_volume(str(v["Name"]))


def gc_a(store: Store, **kw):
    kw.setdefault("older_than", timedelta(0))
    return collect_garbage(store.paths, store.engine, label_filter=store.label, **kw)


def test_gc_in_either_home_keeps_the_other_homes_env(store: Store, home_b: HomeB):
    e_a = store.env_volume()
    e_b = store.env_volume()
    # home A: this process (the test's AISHELL_HOME); its project locks e_a
    store.project("a", [e_a[1]])
    # home B: uid 1500, its own state and project, unreadable by anyone else
    lock = home_b.lock([e_b[1]])
    home_b.run("sync", e_b[1])
    # gc in A: A's own env by its project, B's env by B's published roots
    r = gc_a(store)
    assert r.removed == ()
    assert store.volumes() >= {e_a[0], e_b[0]}
    b_id = engineroots.home_id(home_b.paths)
    mine = [h for h in r.homes if h.id == b_id]
    assert len(mine) == 1 and mine[0].owner.startswith(f"uid {UID} ")
    assert mine[0].seen_by == "heartbeat" and e_b[1] in mine[0].env_ids and not mine[0].expired
    # gc in B (uid 1500): A published its roots during its gc; nothing is removed
    assert home_b.run("gc") == "[]"
    assert store.volumes() >= {e_a[0], e_b[0]}
    # B's project goes: B's next gc republishes without e_b and removes it; e_a stays
    lock.unlink()
    assert home_b.run("gc") == f'["{e_b[0]}"]'
    assert e_a[0] in store.volumes() and e_b[0] not in store.volumes()


def test_a_pin_in_home_b_keeps_its_env_from_gc_in_home_a(store: Store, home_b: HomeB):
    vol, eid = store.env_volume()
    home_b.lock([eid])  # never synced in B: only the pin will root it
    home_b.run("pin")
    r = gc_a(store)
    assert r.removed == () and vol in store.volumes()
    listing = store_cmd.list_store(store.paths, store.engine, label_filter=store.label)
    assert [i.roots for i in listing.items if i.name == vol] == [(f"home:uid {UID} {home_b.paths.state}",)]
    assert any(h.owner == f"uid {UID} {home_b.paths.state}" and h.items == 1 for h in listing.homes)
    home_b.run("unpin")  # unpin publishes too: nothing keeps the env any more
    r = gc_a(store)
    assert {c.name for c in r.removed} == {vol} and vol not in store.volumes()
