"""Rows: lock check, sync (no-op, cold, offline), verify and sharing of the real four-harness env.

The project is the committed ``aishell.lock.example`` (claude, codex, gemini latest as
locked, opencode 1.18.18) under bench-private harness names (see bench/project.py), so the
env volume these rows build and remove is theirs alone.

cold sync   aishell: `aishell sync --locked` with an empty download cache (a fresh
            AISHELL_HOME) into a new env volume: downloads Node.js, npm and the closure,
            installs with `npm ci --offline` in a container without network, digests.
            baseline: what the original tool did: `npm install -g` of the same four exact
            versions into a fresh volume, in a container of the foundation image with the
            same Node.js and npm (taken from the env) and an empty npm cache, the install
            scripts of claude and opencode allowed (aishell runs exactly those).
Every sample that writes an env starts after `sync` and a second's pause (`settle`), so no
sample pays for the writeback of the one before.

offline     env volume removed, no restore archive, cache warm: `aishell sync --offline`
            (a rebuild with `npm ci --offline`) vs the cold sync. The restore archive and
            substituters have their rows in bench/rows_substitute.py.
no-op sync  `aishell sync` with everything present vs `python -c pass`.
verify      `aishell verify VOLUME` vs sha256sum / b3sum / Python blake3 over the same files
            in the volume's host directory (page cache warm for all).
sharing     10 project directories with the same lock, `aishell sync` in each: env volumes
            for the env id on the engine, and their bytes, vs 10 per-project installs.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.context import BenchContext
from bench.project import versions, write_project
from bench.timing import Row, Stats, alternate, bench_env, repeat_only, time_command

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
NO_NETWORK = {  # anything that tried the network or the engine would fail with these
    "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9",
    "npm_config_registry": "http://127.0.0.1:9/", "DOCKER_HOST": "unix:///nonexistent.sock",
}
# Packages whose install scripts aishell runs (the lock marks them has_install_script and
# required); the baseline allows the same so both produce working harnesses.
ALLOW_SCRIPTS = "@anthropic-ai/claude-code,opencode-ai"


def _docker(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {proc.stderr.strip()[-500:]}")
    return proc.stdout.strip()


def _env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = bench_env({"AISHELL_HOME": str(home), **(extra or {})})
    env.pop("npm_config_registry", None)  # the real registry, as the lock says
    return env


def _project(ctx: BenchContext) -> dict[str, Any]:
    """The four-harness project (written once per run)."""
    if "project" not in ctx.state:
        tag = secrets.token_hex(3)
        project = ctx.workdir / "four harnesses"
        env_id = write_project(project, tag)
        ctx.state["project"] = {"dir": project, "tag": tag, "env_id": env_id,
                                "volume": f"aishell-env-{env_id[:32]}"}
        volume = ctx.state["project"]["volume"]
        ctx.cleanups.append(lambda: _docker("volume", "rm", "-f", volume, check=False))
        ctx.cleanups.append(lambda: _remove_labelled(tag))
    return ctx.state["project"]


def _remove_labelled(tag: str) -> None:
    label = f"label=dev.aishell.bench={tag}"
    for c in _docker("ps", "-aq", "--filter", label, check=False).split():
        _docker("rm", "-f", c, check=False)
    for v in _docker("volume", "ls", "-q", "--filter", label, check=False).split():
        _docker("volume", "rm", "-f", v, check=False)


def settle() -> None:
    """Before a sample that writes the env: flush what earlier samples left dirty, so each
    one starts from a quiet disk rather than paying for the previous one's writeback."""
    os.sync()
    time.sleep(1)


def _remove_images(env_id: str) -> None:
    """Every tag of the env's image (local archive, pulled names) and so the image."""
    ids = set(_docker("images", "-q", "--filter", f"label=dev.aishell.env-id={env_id}",
                      check=False).split())
    for image_id in ids:
        _docker("rmi", "-f", image_id, check=False)


def _host_dir(volume: str) -> Path:
    return Path(_docker("volume", "inspect", "--format", "{{.Mountpoint}}", volume))


def _foundation_tag(project: Path, home: Path) -> str:
    out = subprocess.run([*_aishell(), "info", "--json"], cwd=project, env=_env(home),
                         capture_output=True, text=True, check=True).stdout
    return str(json.loads(out)["foundation_tag"])


def _aishell() -> list[str]:
    exe = Path(sys.executable).parent / "aishell"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "aishell"]


def lock_check_row(ctx: BenchContext) -> Row:
    p = _project(ctx)
    home = ctx.workdir / "lock-check-home"  # empty: no cache, no engine state
    env = _env(home, NO_NETWORK)
    argv = [*ctx.aishell, "lock", "--check"]
    a, b = alternate(
        lambda: time_command(argv, env=env, cwd=str(p["dir"])),
        lambda: time_command([sys.executable, "-c", "pass"], env=env),
        ctx.repeat,
    )
    return Row("no-op lock check (`aishell lock --check`, fresh lock, no network, no engine) "
               "vs `python -c pass`", a, b, "≤ 60 ms", a.median <= 0.060,
               note="run with HTTPS_PROXY, the registry and DOCKER_HOST pointing nowhere")


def _cold_aishell(ctx: BenchContext, p: dict[str, Any], n: list[int]) -> float:
    _docker("volume", "rm", "-f", p["volume"], check=False)
    n[0] += 1
    home = ctx.workdir / f"cold-home-{n[0]}"
    previous = ctx.state.get("warm_home")
    settle()
    t = time_command([*ctx.aishell, "sync", "--locked", "-q"], env=_env(home), cwd=str(p["dir"]))
    ctx.state["warm_home"] = home  # the last cold sync's cache serves the offline rows
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
    runtime = ctx.workdir / "runtime"
    if not runtime.exists():  # the env's Node.js and npm, for the baseline
        data = _host_dir(p["volume"])
        runtime.mkdir()
        for part in ("node", "npm"):
            shutil.copytree(data / part, runtime / part, symlinks=True)
    return t


def _cold_npm(ctx: BenchContext, p: dict[str, Any], image: str) -> float:
    volume = f"aishell-bench-npm-g-{secrets.token_hex(4)}"
    label = f"dev.aishell.bench={p['tag']}"
    _docker("volume", "create", "--label", label, volume)
    settle()
    try:
        argv = [
            "docker", "run", "--rm", "--network", "host", "--label", label, "--entrypoint", "",
            "--mount", f"type=bind,source={ctx.workdir / 'runtime'},target=/tools,readonly",
            "--mount", f"type=volume,source={volume},target=/g",
            "--mount", f"type=bind,source={CA_BUNDLE},target={CA_BUNDLE},readonly",
            "-e", f"NODE_EXTRA_CA_CERTS={CA_BUNDLE}",
            "-e", "PATH=/g/bin:/tools/node/bin:/usr/local/bin:/usr/bin:/bin",
            image, "node", "/tools/npm/bin/npm-cli.js", "install", "-g", "--prefix", "/g",
            "--no-fund", "--no-audit", f"--allow-scripts={ALLOW_SCRIPTS}",
            *(f"{pkg}@{v}" for pkg, v in versions().items()),
        ]
        t = time_command(argv, env=bench_env())
        if "npm_g_bytes" not in ctx.state:
            ctx.state["npm_g_bytes"] = _du(_host_dir(volume))
        return t
    finally:
        _docker("volume", "rm", "-f", volume, check=False)


def _du(path: Path) -> int:
    return int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True,
                              check=True).stdout.split()[0])


def cold_sync_row(ctx: BenchContext) -> Row:
    if "cold" in ctx.state:
        return ctx.state["cold"]
    p = _project(ctx)
    image = _foundation_tag(p["dir"], ctx.workdir / "lock-check-home")
    # The foundation image is content-addressed and shared: build it outside the timing.
    subprocess.run([*ctx.aishell, "build", "-q"], cwd=p["dir"],
                   env=_env(ctx.workdir / "lock-check-home"), check=True)
    n = [0]
    a, b = alternate(lambda: _cold_aishell(ctx, p, n), lambda: _cold_npm(ctx, p, image),
                     ctx.live_repeat, warmup=0)
    row = Row("cold sync: four harnesses, empty download cache, new env volume vs "
              "`npm install -g` of the same versions into a fresh volume", a, b, "≤ 1.0×",
              a.median <= b.median,
              note=f"env {_du(_host_dir(p['volume'])) / 1e9:.2f} GB; npm -g tree "
                   f"{ctx.state.get('npm_g_bytes', 0) / 1e9:.2f} GB; aishell also downloads "
                   "Node.js and npm (the baseline has them)")
    ctx.state["cold"] = row
    return row


def offline_sync_row(ctx: BenchContext) -> Row:
    cold = cold_sync_row(ctx)
    p = _project(ctx)
    env = _env(ctx.state["warm_home"])
    argv = [*ctx.aishell, "sync", "--offline", "-q"]

    def once() -> float:  # a rebuild: no restore archive (the restore row measures that)
        _docker("volume", "rm", "-f", p["volume"], check=False)
        _remove_images(p["env_id"])
        (ctx.state["warm_home"] / "config" / "config.toml").unlink(missing_ok=True)
        settle()
        return time_command(argv, env=env, cwd=str(p["dir"]))

    a = repeat_only(once, ctx.live_repeat, warmup=0)
    return Row("offline rebuild: env volume removed, no restore archive, download cache warm "
               "(`aishell sync --offline`) vs the cold sync", a, cold.aishell,
               "reported (the restore row has the ≤ 0.35× target)", True)


def _ensure_env(ctx: BenchContext) -> dict[str, Any]:
    """The synced four-harness env (cold sync first if this run has none yet)."""
    p = _project(ctx)
    if "warm_home" not in ctx.state:
        cold_sync_row(ctx)
    env = _env(ctx.state["warm_home"])
    subprocess.run([*ctx.aishell, "sync", "--offline", "-q"], cwd=p["dir"], env=env, check=True)
    return p


def noop_sync_row(ctx: BenchContext) -> Row:
    p = _ensure_env(ctx)
    env = _env(ctx.state["warm_home"])
    a, b = alternate(
        lambda: time_command([*ctx.aishell, "sync"], env=env, cwd=str(p["dir"])),
        lambda: time_command([sys.executable, "-c", "pass"], env=env),
        ctx.repeat,
    )
    return Row("no-op sync (`aishell sync`, everything present) vs `python -c pass`", a, b,
               "≤ 80 ms", a.median <= 0.080)


def harness_version_row(ctx: BenchContext) -> Row:
    """`aishell claude --version` vs `docker run … claude --version` on the same env volume."""
    p = _ensure_env(ctx)
    env = _env(ctx.state["warm_home"])
    harness = f"claude-b{p['tag']}"
    image = _foundation_tag(p["dir"], ctx.state["warm_home"])
    uid, gid = os.getuid(), os.getgid()
    plain = ["docker", "run", "--rm", "--init", "--user", f"{uid}:{gid}", "--entrypoint", "",
             "--mount", f"type=volume,source={p['volume']},target=/tools,readonly",
             "--env", "PATH=/tools/bin:/tools/node/bin:/usr/bin:/bin", image, "claude",
             "--version"]
    a, b = alternate(
        lambda: time_command([*ctx.aishell, harness, "--version"], env=env, cwd=str(p["dir"])),
        lambda: time_command(plain, env=env),
        ctx.repeat,
    )
    return Row("harness start (`aishell claude --version` vs `docker run … claude --version`, "
               "same env volume)", a, b, "reported (no target)", True,
               note="an interactive launch: the sensitive-file scan and the full plan each time")


PY_BLAKE3 = """
import os, sys
from blake3 import blake3
for root, dirs, files in os.walk(sys.argv[1]):
    for name in files:
        path = os.path.join(root, name)
        if os.path.islink(path):
            continue
        h = blake3(max_threads=blake3.AUTO)
        with open(path, 'rb') as f:
            h.update(f.read())
        print(h.hexdigest(), path)
"""


def verify_row(ctx: BenchContext) -> Row:
    p = _ensure_env(ctx)
    env = _env(ctx.state["warm_home"])
    data = _host_dir(p["volume"])
    argv = [*ctx.aishell, "verify", p["volume"]]
    sha = ["sh", "-c", f"find '{data}' -type f -print0 | xargs -0 sha256sum > /dev/null"]
    b3 = ["sh", "-c", f"find '{data}' -type f -print0 | xargs -0 b3sum > /dev/null"]
    pyb3 = [sys.executable, "-c", PY_BLAKE3, str(data)]
    subprocess.run(["tar", "-C", str(data), "-cf", "/dev/null", "."], check=True)  # warm cache
    a, b = alternate(lambda: time_command(argv, env=env, cwd=str(p["dir"])),
                     lambda: time_command(sha, env=env), ctx.repeat)
    extra: dict[str, Any] = {}
    others = [("python blake3", pyb3)] + ([("b3sum", b3)] if shutil.which("b3sum") else [])
    for name, cmd in others:
        extra[name] = repeat_only(lambda cmd=cmd: time_command(cmd, env=env), ctx.repeat).as_dict()
    out = subprocess.run([*ctx.aishell, "verify", p["volume"], "--json"], env=env,
                         cwd=str(p["dir"]), capture_output=True, text=True, check=True).stdout
    checked = json.loads(out)["envs"][0]
    mb = checked["bytes"] / 1e6
    throughput = b.median / a.median
    others_text = ", ".join(f"{k} {mb / v['median']:.0f} MB/s" for k, v in extra.items())
    if "b3sum" in extra:
        others_text += (f" (aishell {extra['b3sum']['median'] / a.median:.2f}× b3sum's throughput, "
                        f"its digest alone {extra['b3sum']['median'] / checked['seconds']:.2f}×)")
    return Row("verify (`aishell verify`, four-harness env) vs `sha256sum` (find, xargs) over "
               "the same files (throughput)", a, b, "≥ 0.8× their throughput", throughput >= 0.8,
               note=f"{checked['files']} files, {mb:.0f} MB: aishell {mb / a.median:.0f} MB/s "
                    f"(digest alone {mb / checked['seconds']:.0f} MB/s), sha256sum "
                    f"{mb / b.median:.0f} MB/s, {others_text}",
               extra={"throughput_ratio": throughput, "mb": mb, "files": checked["files"],
                      "digest_seconds": checked["seconds"],
                      **{k.replace(" ", "_"): v for k, v in extra.items()}})


def sharing_row(ctx: BenchContext) -> Row:
    p = _ensure_env(ctx)
    env = _env(ctx.state["warm_home"])
    start = time.perf_counter()
    for k in range(10):
        project = ctx.workdir / f"shared-{k}"
        project.mkdir(exist_ok=True)
        for name in ("aishell.toml", "aishell.lock"):
            shutil.copy(p["dir"] / name, project / name)
        subprocess.run([*ctx.aishell, "sync", "-q"], cwd=project, env=env, check=True)
    seconds = time.perf_counter() - start
    volumes = _docker("volume", "ls", "-q", "--filter",
                      f"label=dev.aishell.env-id={p['env_id']}").split()
    size = _du(_host_dir(p["volume"]))
    on_disk = sum(_du(_host_dir(v)) for v in volumes)
    return Row("sharing: 10 projects with one lock (env bytes on disk) vs 10 per-project "
               "installs", Stats((on_disk / 1e9,)), Stats((10 * size / 1e9,)),
               "1 env on disk", len(volumes) == 1, unit="GB",
               note=f"{len(volumes)} env volume(s) after 10 syncs in 10 projects "
                    f"({seconds:.1f} s for all 10); baseline = 10 × the env's {size / 1e9:.2f} GB",
               extra={"volumes": len(volumes), "env_bytes": size, "syncs_seconds": seconds})


def _forget_homes(workdir: Path) -> None:
    """Remove the gc-root markers the run's aishell homes published on the engine."""
    names = _docker("volume", "ls", "-q", "--filter", "label=dev.aishell.gcroot",
                    check=False).split()
    if not names:
        return
    found = json.loads(_docker("volume", "inspect", *names, check=False) or "[]")
    for volume in found:
        owner = str((volume.get("Labels") or {}).get("dev.aishell.gcroot.owner", ""))
        if str(workdir) in owner:
            _docker("volume", "rm", "-f", volume["Name"], check=False)


def cleanup(ctx: BenchContext) -> None:
    for fn in reversed(ctx.cleanups):
        with contextlib.suppress(Exception):
            fn()
    with contextlib.suppress(Exception):
        _forget_homes(ctx.workdir)
    with contextlib.suppress(Exception):
        os.sync()
