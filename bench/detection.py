"""Sensitive-file detection on a generated 100,000-file tree, against `find` on the same tree.

    uv run python -m bench.detection [--files 100000] [--repeat 5] [--keep DIR]

Generates a tree shaped like a large monorepo (nested source directories, a few planted
secrets, plus skipped directories such as node_modules that `find` still has to walk),
then times, in the same run and with a warm page cache:

  * aishell.detection.scan (walk + match + one `git check-ignore`; no git repo here),
  * `find TREE -type f` (a plain listing of the same tree),
  * `find` doing the equivalent work: prune the skip list, match every pattern with -iname.

The best of --repeat runs is reported for each, with the ratios.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from aishell import detection

PLANTED = ["id_rsa", ".env", ".env.example", "server.pem", "terraform.tfstate", "secrets.yml"]
EXTS = [".py", ".ts", ".js", ".md", ".json", ".go", ".rs", ".txt", ".yml", ".css"]


def generate(root: Path, files: int) -> int:
    """``files`` regular files outside the skip list, plus 10% more inside skipped dirs."""
    per_dir = 50
    made = 0
    d = 0
    while made < files:
        # three levels: pkg-NN/mod-NN/dir-NNN
        directory = root / f"pkg-{d % 40:02d}" / f"mod-{(d // 40) % 50:02d}" / f"dir-{d:04d}"
        directory.mkdir(parents=True, exist_ok=True)
        for i in range(min(per_dir, files - made)):
            (directory / f"file_{i:03d}{EXTS[i % len(EXTS)]}").touch()
            made += 1
        d += 1
    for i, name in enumerate(PLANTED):
        (root / f"pkg-{i:02d}" / name).touch()
    skipped = root / "node_modules"
    for p in range(files // 10 // per_dir):
        pkg = skipped / f"dep-{p:04d}"
        pkg.mkdir(parents=True)
        for i in range(per_dir):
            (pkg / f"index_{i}.js").touch()
    return made + len(PLANTED)


def find_equivalent(root: Path) -> list[str]:
    prune: list[str] = []
    for name in sorted(detection.SKIP_DIRS):
        prune += ["-name", name, "-o"]
    names: list[str] = []
    for pattern in detection.HIGH + detection.MEDIUM + detection.LOW:
        names += (["-ipath", f"*/{pattern}"] if "/" in pattern else ["-iname", pattern]) + ["-o"]
    return ["find", str(root), "(", *prune[:-1], ")", "-prune", "-o", "-type", "f",
            "(", *names[:-1], ")", "-print"]


def timed(fn: object, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", metavar="DIR", help="generate into DIR and keep it")
    args = parser.parse_args()

    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="aishell-bench-"))
    root = base / "tree"
    try:
        if not root.exists():
            t0 = time.perf_counter()
            total = generate(root, args.files)
            print(f"generated {total} files (+{args.files // 10} in node_modules) "
                  f"in {time.perf_counter() - t0:.1f} s under {root}")
        result = detection.scan(root)
        print(f"scan: {result.files_scanned} files scanned, {len(result.findings)} findings: "
              + ", ".join(f"{f.path} [{f.severity}]" for f in result.findings))

        def run_find(argv: list[str]) -> None:
            subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)

        plain = ["find", str(root), "-type", "f"]
        equiv = find_equivalent(root)
        run_find(plain)  # warm the page cache
        scan_t = timed(lambda: detection.scan(root), args.repeat)
        plain_t = timed(lambda: run_find(plain), args.repeat)
        equiv_t = timed(lambda: run_find(equiv), args.repeat)
        for label, ts in (("aishell scan", scan_t), ("find -type f", plain_t),
                          ("find (prune + -iname patterns)", equiv_t)):
            print(f"{label:32s} best {min(ts) * 1000:7.1f} ms   "
                  f"median {statistics.median(ts) * 1000:7.1f} ms")
        print(f"ratio scan/find -type f:           {min(scan_t) / min(plain_t):.2f}")
        print(f"ratio scan/find (equivalent work): {min(scan_t) / min(equiv_t):.2f}")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
