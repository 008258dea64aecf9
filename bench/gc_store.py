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
    from aishell import index

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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--volumes", type=int, default=200)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--projects", type=int, default=40)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="aishell-bench-gc-"))
    os.environ["AISHELL_HOME"] = str(home)
    from aishell import index
    from aishell.commands import store as store_cmd
    from aishell.commands.gc import collect_garbage
    from aishell.engine import Engine
    from aishell.errors import EngineError
    from aishell.paths import default_paths

    engine, paths = Engine(), default_paths()
    tag = uuid.uuid4().hex[:10]
    label = {"dev.aishell.bench-gc": tag}
    t0 = time.monotonic()
    live_envs, live_images = _populate(engine, paths, home=home, tag=tag, label=label,
                                       args=args)
    made = time.monotonic() - t0
    print(f"created {args.volumes} volumes, {args.images} images, {args.projects} projects "
          f"in {made:.1f} s")
    later = index.now_utc() + timedelta(hours=2)
    try:
        t = time.monotonic()
        listing = store_cmd.list_store(paths, engine, label_filter=label)
        print(f"store ls: {len(listing.items)} items in {time.monotonic() - t:.2f} s")
        t = time.monotonic()
        dry = collect_garbage(paths, engine, dry_run=True, label_filter=label, now=later)
        print(f"gc --dry-run: {len(dry.removed)} would go, {dry.reachable} reachable, "
              f"{time.monotonic() - t:.2f} s")
        t = time.monotonic()
        real = collect_garbage(paths, engine, label_filter=label, now=later)
        print(f"gc: removed {len(real.removed)} ({real.freed_bytes} bytes), {real.reachable} kept, "
              f"{time.monotonic() - t:.2f} s (core reports {real.seconds:.2f} s)")
        expected = (args.volumes - len(live_envs)) + (args.images - len(live_images))
        left_v = {str(v["Name"]) for v in engine.list_volumes(label)}
        left_i = {str(i["Id"]) for i in engine.list_images(label)}
        ok = (len(real.removed) == expected
              and left_v == {f"aishell-env-{e[:24]}" for e in live_envs}
              and left_i == {i for i, _ in live_images})
        print("exactly the unreachable half removed:", ok)
        return 0 if ok else 1
    finally:
        for v in engine.list_volumes(label):
            with contextlib.suppress(EngineError):
                engine.remove_volume(str(v["Name"]))
        for i in engine.list_images(label):
            for ref in [t for t in i.get("RepoTags") or () if t != "<none>:<none>"] or [i["Id"]]:
                with contextlib.suppress(EngineError):
                    engine.remove_image(ref)
        engine.close()


if __name__ == "__main__":
    sys.exit(main())
