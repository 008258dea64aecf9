"""Tree digest throughput, side by side with coreutils sha256sum, in one run.

    uv run python bench/bench_treedigest.py [--engine] [--keep DIR]

Builds an env-like tree (many small files from node_modules and a virtualenv, plus two
~100 MB binaries), warms the page cache, then times (best of 3) hashing the same bytes:

* directory: ``find | xargs sha256sum``, Python hashlib sha256, :func:`digest_directory`
* tar stream (local ``tar -c``): ``| sha256sum`` vs :func:`digest_tar`
* with ``--engine``: the tree copied into a volume, the engine's archive stream through
  ``docker cp … - | sha256sum`` vs :func:`aishell.store.envs.compute_digest` through the
  archive and through the volume's host directory

MB/s are content bytes (the sum of file sizes) per second, for every row.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aishell.store.treedigest import digest_directory, digest_tar  # noqa: E402

LABELS = {"dev.aishell.test": "1", "dev.aishell.bench": "1"}


def build_tree(dest: Path) -> None:
    sources = [ROOT / ".venv", Path("/usr/lib/node_modules")]
    for i, src in enumerate(s for s in sources for _ in range(2)):
        if src.is_dir():
            shutil.copytree(src, dest / f"tree{i}", symlinks=True)
    node = shutil.which("node")
    (dest / "bin").mkdir(parents=True, exist_ok=True)
    for i in range(2):
        if node:
            shutil.copy(node, dest / "bin" / f"big{i}")
        else:
            (dest / "bin" / f"big{i}").write_bytes(os.urandom(100 << 20))


def best(fn: Callable[[], object], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def sh(command: str) -> None:
    subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True,
                   stdout=subprocess.DEVNULL)


def hashlib_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if path.is_symlink():
                continue
            with path.open("rb") as f:
                hashlib.file_digest(f, "sha256")


def local_tar_digest(root: Path) -> None:
    proc = subprocess.Popen(["tar", "-C", str(root), "-cf", "-", "."], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    digest_tar(proc.stdout)
    proc.stdout.close()
    proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", action="store_true", help="also measure through the engine")
    parser.add_argument("--keep", type=Path, help="build (or reuse) the tree here")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aishell-bench-"))
    tree = args.keep or tmp / "tree"
    if not tree.exists():
        build_tree(tree)
    result = digest_directory(tree)
    mb = result.bytes / 1e6
    print(f"tree: {result.files} files, {mb:.0f} MB, digest {result.digest[:16]}…")
    sh(f"tar -C '{tree}' -cf - . | cat > /dev/null")  # warm the page cache

    q = f"'{tree}'"
    rows: list[tuple[str, float]] = [
        ("dir: find|xargs cat (read only)", best(lambda: sh(
            f"find {q} -type f -print0 | xargs -0 cat"))),
        ("dir: find|xargs sha256sum", best(lambda: sh(
            f"find {q} -type f -print0 | xargs -0 sha256sum"))),
        ("dir: python hashlib sha256", best(lambda: hashlib_tree(tree))),
        ("dir: aishell digest_directory", best(lambda: digest_directory(tree))),
        ("tar: tar -c | cat (read only)", best(lambda: sh(f"tar -C {q} -cf - . | cat"))),
        ("tar: tar -c | sha256sum", best(lambda: sh(f"tar -C {q} -cf - . | sha256sum"))),
        ("tar: tar -c | aishell digest_tar", best(lambda: local_tar_digest(tree))),
    ]
    if args.engine:
        rows += engine_rows(tree, result.digest)
    baseline = dict(rows)
    print(f"{'what':42} {'seconds':>8} {'MB/s':>8}  vs sha256sum")
    for name, seconds in rows:
        ref = baseline["dir: find|xargs sha256sum"] if name.startswith("dir") else (
            baseline["tar: tar -c | sha256sum"] if name.startswith("tar") else
            baseline.get("engine: docker cp | sha256sum", seconds))
        print(f"{name:42} {seconds:8.3f} {mb / seconds:8.0f}  {ref / seconds:5.2f}x")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


@contextmanager
def volume_copy(tree: Path) -> Iterator[tuple[Any, str, str, str]]:
    """A labelled volume holding a copy of ``tree`` and a stopped container mounting it
    read-only at /v: (engine, helper image, volume, container). Both removed on exit."""
    from aishell.engine import Engine
    from aishell.request import ContainerRequest, Mount
    from aishell.store.envs import helper_image

    engine = Engine()
    image = helper_image(engine)
    volume = f"aishell-bench-{secrets.token_hex(4)}"
    engine.create_volume(volume, LABELS)
    helper = None
    try:
        code, out = engine.run_to_completion(ContainerRequest(
            image=image, command=("sh", "-c", "cp -a /src/. /dst/"), labels=LABELS,
            mounts=(Mount(str(tree), "/src", read_only=True),
                    Mount(volume, "/dst", kind="volume", no_copy=True)),
            entrypoint=(), interactive=False))
        assert code == 0, out
        helper = engine.create_container(ContainerRequest(
            image=image, command=("true",), labels=LABELS, entrypoint=(), interactive=False,
            mounts=(Mount(volume, "/v", read_only=True, kind="volume", no_copy=True),)))
        yield engine, image, volume, helper
    finally:
        if helper:
            engine.remove_container(helper, force=True)
        engine.remove_volume(volume)


def engine_rows(tree: Path, expected: str) -> list[tuple[str, float]]:
    from aishell.store.envs import compute_digest

    with volume_copy(tree) as (engine, image, volume, helper):
        for via in ("engine", "host"):
            got = compute_digest(engine, volume, image=image, labels=LABELS, via=via)
            assert got.digest == expected, f"{via}: the volume must give the tree's digest"
        cli = engine.cli
        return [
            ("engine: docker cp | cat (read only)",
             best(lambda: sh(f"{cli} cp {helper}:/v - | cat"))),
            ("engine: docker cp | sha256sum",
             best(lambda: sh(f"{cli} cp {helper}:/v - | sha256sum"))),
            ("engine: aishell compute_digest (archive)",
             best(lambda: compute_digest(engine, volume, image=image, labels=LABELS,
                                         via="engine"))),
            ("engine: aishell compute_digest (host dir)",
             best(lambda: compute_digest(engine, volume, image=image, labels=LABELS,
                                         via="host"))),
        ]


if __name__ == "__main__":
    raise SystemExit(main())
