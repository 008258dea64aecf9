"""gc on a store of a few hundred cheap items, half of them unreachable.

    uv run python -m bench.gc_store [--volumes 200] [--images 100] [--projects 40]

Creates, on the real engine and under a private AISHELL_HOME, labelled env volumes and
tiny images (``docker import`` of a one-file tar), and project directories whose
``aishell.lock`` names half of the envs (several projects share each env) and whose
index records name half of the images. Then times ``store ls``, ``gc --dry-run`` and
``gc``, confined to this run's label, checks gc removed exactly the unreachable half,
prints the ``store ls`` table of a smaller slice, and removes everything it created.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import secrets
import sys
import tarfile
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path


def _populate(engine, paths, *, home: Path, tag: str, label: dict[str, str], args) -> tuple[list, list]:
    """Make the volumes, images and projects; returns the env ids and images kept alive."""
    from aishell.store import index

    env_ids = []
    for _ in range(args.volumes):
        eid = secrets.token_hex(32)
        engine.create_volume(f"aishell-env-{eid[:24]}", {**label, "dev.aishell.managed": "1",
                                                          "dev.aishell.kind": "env",
                                                          "dev.aishell.env-id": eid,
                                                          "dev.aishell.platform": "linux/amd64"})
        env_ids.append(eid)
    images = []
    api = engine.sdk().api
    change = f"LABEL dev.aishell.managed=1 dev.aishell.kind=foundation dev.aishell.bench-gc={tag}"
    for n in range(args.images):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            data = os.urandom(4096)
            info = tarfile.TarInfo("blob")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        api.import_image_from_data(buf.getvalue(), repository=f"aishell-bench-{tag}", tag=str(n),
                                   changes=[change])
        image = engine.image_inspect(f"aishell-bench-{tag}:{n}")
        assert image is not None
        images.append((str(image["Id"]), f"aishell-bench-{tag}:{n}"))
    live_envs = env_ids[: args.volumes // 2]
    live_images = images[: args.images // 2]
    for p in range(args.projects):
        project = home / "projects" / f"project-{p:03d}"
        project.mkdir(parents=True)
        mine = [live_envs[(p * 5 + k) % len(live_envs)] for k in range(5)]
        lock = project / "aishell.lock"
        lock.write_text("version = 1\n" + "".join(f'[env."linux/p{k}"]\nid = "{e}"\n'
                                                  for k, e in enumerate(mine)))
        refs = [index.ImageRef("foundation", i, t) for i, t in live_images[p::args.projects]]
        index.record_use(paths, project, lock_path=lock, env_ids={"linux/amd64": mine[0]},
                         images=refs, lock_bytes=lock.read_bytes())
    return live_envs, live_images


def run(volumes: int = 200, images: int = 100, projects: int = 40, *, baseline: bool = False,
        verbose: bool = True) -> dict[str, float]:
    """Populate, time ``store ls``, ``gc --dry-run`` and ``gc``; with ``baseline``, populate
    again and time removing the same unreachable items with the engine CLI (``docker volume
    rm`` and ``docker rmi`` given the list: the floor any gc pays to the engine)."""
    args = argparse.Namespace(volumes=volumes, images=images, projects=projects)
    home = Path(tempfile.mkdtemp(prefix="aishell-bench-gc-"))
    saved_home = os.environ.get("AISHELL_HOME")
    os.environ["AISHELL_HOME"] = str(home)
    from aishell.engine import Engine
    from aishell.paths import default_paths
    from aishell.store import index
    from aishell.store import listing as store_cmd
    from aishell.store.gc import collect_garbage

    say = print if verbose else (lambda *a, **k: None)
    engine, paths = Engine(), default_paths()
    tag = uuid.uuid4().hex[:10]
    label = {"dev.aishell.bench-gc": tag}
    out: dict[str, float] = {}
    try:
        t0 = time.monotonic()
        live_envs, live_images = _populate(engine, paths, home=home, tag=tag, label=label,
                                           args=args)
        out["populate_seconds"] = time.monotonic() - t0
        say(f"created {volumes} volumes, {images} images, {projects} projects "
            f"in {out['populate_seconds']:.1f} s")
        later = index.now_utc() + timedelta(hours=2)
        t = time.monotonic()
        listing = store_cmd.list_store(paths, engine, label_filter=label)
        out["store_ls_seconds"] = time.monotonic() - t
        say(f"store ls: {len(listing.items)} items in {out['store_ls_seconds']:.2f} s")
        t = time.monotonic()
        dry = collect_garbage(paths, engine, dry_run=True, label_filter=label, now=later)
        out["dry_run_seconds"] = time.monotonic() - t
        say(f"gc --dry-run: {len(dry.removed)} would go, {dry.reachable} reachable, "
            f"{out['dry_run_seconds']:.2f} s")
        t = time.monotonic()
        real = collect_garbage(paths, engine, label_filter=label, now=later)
        out["gc_seconds"] = time.monotonic() - t
        say(f"gc: removed {len(real.removed)} ({real.freed_bytes} bytes), {real.reachable} kept, "
            f"{out['gc_seconds']:.2f} s (core reports {real.seconds:.2f} s)")
        expected = (volumes - len(live_envs)) + (images - len(live_images))
        left_v = {str(v["Name"]) for v in engine.list_volumes(label)}
        left_i = {str(i["Id"]) for i in engine.list_images(label)}
        ok = (len(real.removed) == expected
              and left_v == {f"aishell-env-{e[:24]}" for e in live_envs}
              and left_i == {i for i, _ in live_images})
        out["removed"] = len(real.removed)
        out["items"] = volumes + images
        out["ok"] = float(ok)
        say("exactly the unreachable half removed:", ok)
        if baseline:
            _cleanup(engine, label)
            out["docker_rm_seconds"] = _docker_rm(engine, paths, home, args, say)
        return out
    finally:
        _cleanup(engine, label)
        engine.close()
        _restore(saved_home, home)


def _restore(saved_home: str | None, home: Path) -> None:
    import shutil

    if saved_home is None:
        os.environ.pop("AISHELL_HOME", None)
    else:
        os.environ["AISHELL_HOME"] = saved_home
    shutil.rmtree(home, ignore_errors=True)


def _docker_rm(engine, paths, home: Path, args: argparse.Namespace, say) -> float:
    """Populate afresh, then time `docker volume rm` + `docker rmi` of the unreachable half."""
    import shutil
    import subprocess

    tag = uuid.uuid4().hex[:10]
    label = {"dev.aishell.bench-gc": tag}
    shutil.rmtree(home / "projects")
    try:
        live_envs, live_images = _populate(engine, paths, home=home, tag=tag, label=label,
                                           args=args)
        keep_v = {f"aishell-env-{e[:24]}" for e in live_envs}
        dead_v = [str(v["Name"]) for v in engine.list_volumes(label) if str(v["Name"]) not in keep_v]
        keep_i = {i for i, _ in live_images}
        dead_i = [t for i in engine.list_images(label) if str(i["Id"]) not in keep_i
                  for t in i.get("RepoTags") or ()]
        t = time.monotonic()
        subprocess.run(["docker", "volume", "rm", *dead_v], capture_output=True, check=True)
        subprocess.run(["docker", "rmi", *dead_i], capture_output=True, check=True)
        seconds = time.monotonic() - t
        say(f"docker volume rm + docker rmi of the same {len(dead_v) + len(dead_i)} items: "
            f"{seconds:.2f} s")
        return seconds
    finally:
        _cleanup(engine, label)


def _cleanup(engine, label: dict[str, str]) -> None:
    from aishell.errors import EngineError

    for v in engine.list_volumes(label):
        with contextlib.suppress(EngineError):
            engine.remove_volume(str(v["Name"]))
    for i in engine.list_images(label):
        for ref in [t for t in i.get("RepoTags") or () if t != "<none>:<none>"] or [i["Id"]]:
            with contextlib.suppress(EngineError):
                engine.remove_image(ref)


def gc_row(ctx):
    """The `gc` row of `python -m bench`: gc of 300 items, half unreachable, vs removing the
    same 150 items with `docker volume rm` / `docker rmi` given the list (3 runs at most:
    each populates the engine twice)."""
    from bench.timing import Row, Stats

    runs = [run(baseline=True, verbose=False) for _ in range(min(ctx.repeat, 3))]
    ok = all(r["ok"] for r in runs)
    med = sorted(runs, key=lambda r: r["gc_seconds"])[len(runs) // 2]
    gc = Stats(tuple(r["gc_seconds"] for r in runs))
    return Row("gc: store of 300 items (200 volumes, 100 images), half unreachable vs "
               "`docker volume rm` + `docker rmi` of the same 150", gc,
               Stats(tuple(r["docker_rm_seconds"] for r in runs)), "≤ 5 s",
               gc.median <= 5 and ok,
               note=f"removed {med['removed']:.0f}, exactly the unreachable half every run: "
                    f"{ok}; store ls {med['store_ls_seconds']:.2f} s, gc --dry-run "
                    f"{med['dry_run_seconds']:.2f} s",
               extra={k: v for k, v in med.items() if k.endswith("seconds")})


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--volumes", type=int, default=200)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--projects", type=int, default=40)
    parser.add_argument("--baseline", action="store_true")
    args = parser.parse_args()
    out = run(args.volumes, args.images, args.projects, baseline=args.baseline)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
