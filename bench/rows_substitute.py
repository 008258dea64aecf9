"""Rows: the real four-harness env from its restore archive and from a substituter.

restore      `[store] keep_archive = true`; the env volume removed, `aishell sync --offline`
             restores it from the local image ``aishell-env:<env id>`` (the engine copies the
             image's /tools into a fresh volume, aishell digests it) vs the cold sync.
substituted  the env pushed (`aishell store push`) to Debian's docker-registry on a loopback
             port; each sample is a fresh AISHELL_HOME (empty download cache) with the env
             volume and every local copy of the image removed: `aishell sync --locked
             --substituter 127.0.0.1:PORT/aishell` pulls, restores and digests it — vs the
             cold sync, which downloads and installs the same lock.

Both rows share the cold sync's samples (bench/rows_sync.py) so the ratios come from one run.
The notes also report what keeping the archive costs after a build (the export), the size
of the image, and whether two builds of the same lock gave the same layer digest.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from typing import Any

from bench.context import BenchContext
from bench.rows_sync import _docker, _env, _project, _remove_images, cold_sync_row, settle
from bench.timing import Row, repeat_only, time_command
from tests.fixtures_oci import OciRegistry, serve_registry


def _archive_home(ctx: BenchContext) -> Any:
    """The warm home with ``keep_archive = true`` (the setting is global config only)."""
    home = ctx.state["warm_home"]
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[store]\nkeep_archive = true\n", encoding="utf-8")
    return home


def _sync_json(ctx: BenchContext, argv: list[str], home: Any) -> dict[str, Any]:
    p = _project(ctx)
    out = subprocess.run([*ctx.aishell, "sync", "--json", *argv], cwd=p["dir"], env=_env(home),
                         capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out)["env"])


def _archived(ctx: BenchContext) -> dict[str, Any]:
    """Build the env once with the archive kept; remember the export's cost and the layer."""
    if "archived" in ctx.state:
        return dict(ctx.state["archived"])
    cold_sync_row(ctx)
    p = _project(ctx)
    home = _archive_home(ctx)
    _docker("volume", "rm", "-f", p["volume"], check=False)
    _remove_images(p["env_id"])
    ctx.cleanups.append(lambda: _remove_images(p["env_id"]))
    builds = []
    for _ in range(2):  # two independent builds of the lock: do they give one layer?
        _docker("volume", "rm", "-f", p["volume"], check=False)
        _remove_images(p["env_id"])
        start = time.perf_counter()
        env = _sync_json(ctx, ["--offline", "-q"], home)
        with_archive = time.perf_counter() - start
        info = json.loads(_docker("image", "inspect", f"aishell-env:{p['env_id']}",
                                  "--format", "{{json .}}"))
        builds.append({"with_archive": with_archive, "build": float(env.get("seconds") or 0.0),
                       "layer": info["RootFS"]["Layers"][-1], "image_bytes": int(info["Size"]),
                       "tree_digest": env["tree_digest"]})
    state = {**builds[-1], "layers_built": [b["layer"] for b in builds]}
    ctx.state["archived"] = state
    return state


def restore_row(ctx: BenchContext) -> Row:
    cold = cold_sync_row(ctx)
    p = _project(ctx)
    archived = _archived(ctx)
    home = _archive_home(ctx)
    argv = [*ctx.aishell, "sync", "--offline", "-q"]

    def once() -> float:
        _docker("volume", "rm", "-f", p["volume"], check=False)
        settle()
        return time_command(argv, env=_env(home), cwd=str(p["dir"]))

    a = repeat_only(once, ctx.live_repeat, warmup=0)
    env = _sync_json(ctx, ["--offline"], home)  # present: says where the last one came from
    ratio = a.median / cold.aishell.median
    return Row("offline re-sync from the local restore archive (env volume removed, "
               "`keep_archive = true`) vs the cold sync", a, cold.aishell, "≤ 0.35×",
               ratio <= 0.35,
               note=f"image {archived['image_bytes'] / 1e9:.2f} GB; keeping it cost "
                    f"{archived['with_archive'] - archived['build']:.1f} s after a "
                    f"{archived['build']:.1f} s build; last restore: {env.get('state')}",
               extra={"archive": archived})


def _same_layer_text(archived: dict[str, Any], pulled: list[str]) -> str:
    built = archived["layers_built"]
    twice = "two builds of the lock gave one layer" if len(set(built)) == 1 else (
        "two builds of the lock gave different layers")
    served = "pulled = pushed" if all(x == archived["layer"] for x in pulled) else (
        "a pulled layer differs from the pushed one")
    return f"{twice} ({built[0][7:19]}), {served}"


def _registry(ctx: BenchContext) -> OciRegistry:
    if "registry" not in ctx.state:
        stack = contextlib.ExitStack()
        ctx.state["registry"] = stack.enter_context(serve_registry(ctx.workdir / "registry"))
        ctx.cleanups.append(stack.close)
    return ctx.state["registry"]  # type: ignore[no-any-return]


def substituted_row(ctx: BenchContext) -> Row:
    cold = cold_sync_row(ctx)
    p = _project(ctx)
    archived = _archived(ctx)
    home = _archive_home(ctx)
    target = _registry(ctx).path()
    start = time.perf_counter()
    subprocess.run([*ctx.aishell, "store", "push", "--to", target, "-q"], cwd=p["dir"],
                   env=_env(home), check=True)
    push_seconds = time.perf_counter() - start
    n = [0]
    layers: list[str] = []
    downloaded: list[int] = []

    def once() -> float:
        _docker("volume", "rm", "-f", p["volume"], check=False)
        _remove_images(p["env_id"])
        n[0] += 1
        fresh = ctx.workdir / f"substituted-home-{n[0]}"
        settle()
        t = time_command([*ctx.aishell, "sync", "--locked", "-q", "--substituter", target],
                         env=_env(fresh), cwd=str(p["dir"]))
        info = json.loads(_docker("image", "inspect", f"aishell-env:{p['env_id']}",
                                  "--format", "{{json .RootFS}}"))
        layers.append(info["Layers"][-1])
        downloaded.append(sum(1 for f in (fresh / "cache").rglob("*") if f.is_file()))
        return t

    a = repeat_only(once, ctx.live_repeat, warmup=0)
    env = _sync_json(ctx, ["--locked"], ctx.workdir / f"substituted-home-{n[0]}")
    # Where the time goes: the engine's pull alone (download, decompress, unpack).
    ref = f"{target}/env:{p['env_id']}"
    _remove_images(p["env_id"])
    settle()
    pull = time_command(["docker", "pull", "-q", ref], env=None)
    _remove_images(p["env_id"])
    same = all(layer == archived["layer"] for layer in layers)
    layer_text = _same_layer_text(archived, layers)
    ratio = a.median / cold.aishell.median
    unpigz = "with unpigz" if shutil.which("unpigz") else "no unpigz on PATH"
    return Row("substituted sync (fresh home, empty cache, env pulled from a loopback "
               "docker-registry) vs the cold sync", a, cold.aishell, "reported (no target)",
               True,
               note=f"{ratio:.2f}× the cold sync; the engine's `docker pull` alone took "
                    f"{pull:.1f} s ({unpigz}); push took {push_seconds:.1f} s; {layer_text}; "
                    "files in the fresh "
                    f"homes' download caches: {max(downloaded)}; "
                    f"tree digest {env.get('tree_digest', '')[:12]} "
                    f"{'=' if env.get('tree_digest') == archived['tree_digest'] else '≠'} "
                    "the local build's",
               extra={"push_seconds": push_seconds, "pull_seconds": pull, "layers": layers,
                      "cache_files": downloaded,
                      "same_layer": same})
