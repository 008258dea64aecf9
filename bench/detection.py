"""Sensitive-file detection on a generated 100,000-file tree, against `find` on the same tree.

    uv run python -m bench.detection [--files 100000] [--repeat 5] [--keep DIR]

Generates a tree shaped like a large monorepo (nested source directories, a few planted
secrets, plus skipped directories such as node_modules that `find` still has to walk),
then times, in the same run and with a warm page cache:

  * aishell.security.detection.scan (walk + match + one `git check-ignore`; no git repo here),
  * `find TREE -type f` (a plain listing of the same tree),
  * `find` doing the equivalent work: prune the skip list, match every pattern with -iname.

The runs alternate (scan, find, scan, find …) and medians are compared. The same
measurement is the `detection` row of `python -m bench`.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from aishell.security import detection
from bench.context import BenchContext
from bench.timing import Row, Stats, alternate, repeat_only, time_call, time_command

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


def _time_find(argv: list[str]) -> float:
    return time_command(argv)


def measure(root: Path, repeat: int) -> tuple[Row, Stats]:
    """The scan against `find -type f` (the row), and `find` doing equivalent work."""
    plain = ["find", str(root), "-type", "f"]
    scan, find = alternate(lambda: time_call(lambda: detection.scan(root)),
                           lambda: _time_find(plain), repeat)
    equivalent = repeat_only(lambda: _time_find(find_equivalent(root)), repeat)
    ok = scan.median < 1.0 and scan.median <= 3 * find.median
    row = Row("sensitive-file scan, 100k files (vs `find TREE -type f`)", scan, find,
              "< 1 s and ≤ 3× find", ok,
              note=f"find with the same prune + -iname patterns: {equivalent.median * 1000:.0f} ms",
              extra={"find_equivalent_median": equivalent.median})
    return row, equivalent


def detection_row(ctx: BenchContext, files: int = 100_000) -> Row:
    """The row for `python -m bench --rows detection`."""
    root = ctx.workdir / "detection-tree"
    if not root.exists():
        generate(root, files)
    row, _ = measure(root, ctx.repeat)
    return row


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
        row, equivalent = measure(root, args.repeat)
        assert row.baseline is not None
        for label, st in (("aishell scan", row.aishell), ("find -type f", row.baseline),
                          ("find (prune + -iname patterns)", equivalent)):
            print(f"{label:32s} min {st.min * 1000:7.1f} ms   median {st.median * 1000:7.1f} ms"
                  f"   max {st.max * 1000:7.1f} ms")
        print(f"ratio scan/find -type f (medians):           {row.ratio:.2f}")
        print(f"ratio scan/find equivalent work (medians):   "
              f"{row.aishell.median / equivalent.median:.2f}")
        print(f"target {row.target}: {'ok' if row.ok else 'MISSED'}")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
