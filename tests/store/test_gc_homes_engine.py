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
from datetime import timedelta
from pathlib import Path

import pytest

from aishell.paths import Paths
from aishell.store import engineroots
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


def test_gc_in_either_home_keeps_the_other_homes_env(store: Store, other_user, tmp_path):
    e_a = store.env_volume()
    e_b = store.env_volume()
    # home A: this process (the test's AISHELL_HOME); its project locks e_a
    store.project("a", [e_a[1]])
    # home B: uid 1500, its own state and project, unreadable by anyone else
    b_root = Path(tempfile.mkdtemp(prefix="aishell-homeb-", dir="/tmp"))
    os.chown(b_root, UID, UID)
    b_root.chmod(0o700)
    b_home, b_project = b_root / "home", b_root / "proj"
    for d in (b_home, b_project):
        d.mkdir()
        os.chown(d, UID, UID)
    lock = b_project / "aishell.lock"
    lock.write_text(lock_text([e_b[1]]), encoding="utf-8")
    os.chown(lock, UID, UID)
    b_paths = Paths(config=b_home / "config", state=b_home / "state", cache=b_home / "cache")

    def b(step: str) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([*other_user, str(b_home), str(b_project), e_b[1], store.tag, step],
                           capture_output=True, text=True, timeout=120, check=False)
        assert r.returncode == 0, r.stderr
        return r

    try:
        b("sync")
        # gc in A: A's own env by its project, B's env by B's published roots
        r = collect_garbage(store.paths, store.engine, older_than=timedelta(0),
                            label_filter=store.label)
        assert r.removed == ()
        assert store.volumes() >= {e_a[0], e_b[0]}
        kept_by = {c.kind for c in engineroots.foreign_roots(store.engine, store.paths)}
        assert kept_by == {"home"}
        # gc in B (uid 1500): A published its roots during its gc; nothing is removed
        assert b("gc").stdout.strip() == "[]"
        assert store.volumes() >= {e_a[0], e_b[0]}
        # B's project goes: B's next gc republishes without e_b and removes it; e_a stays
        lock.unlink()
        assert b("gc").stdout.strip() == f'["{e_b[0]}"]'
        assert e_a[0] in store.volumes() and e_b[0] not in store.volumes()
    finally:
        for paths in (store.paths, b_paths):
            me = engineroots.home_id(paths)
            for v in store.engine.list_volumes({engineroots.HOME: me}):
                store.engine.remove_volume(str(v["Name"]))
        shutil.rmtree(b_root, ignore_errors=True)
