"""The benchmark suite's own logic (bench/): the private four-harness project and the table."""

from __future__ import annotations

from aishell.lock.freshness import read_lock, stale_reasons
from aishell.lock.manifest import from_config
from aishell.project.config import load
from bench.project import EXAMPLE, versions, write_project
from bench.timing import Row, Stats, alternate


def test_bench_project_is_the_example_under_private_names_and_fresh(tmp_path):
    env_id = write_project(tmp_path, "t1")
    lock = read_lock(tmp_path / "aishell.lock")  # raises if the env ids do not match
    example = read_lock(EXAMPLE)
    assert lock is not None and example is not None
    assert lock.env_ids()["linux/amd64"] == env_id != example.env_ids()["linux/amd64"]
    assert {h.name for h in lock.harnesses} == {f"{h.name}-bt1" for h in example.harnesses}
    assert {(h.package, h.version) for h in lock.harnesses} == set(versions().items())
    assert [h.packages for h in lock.harnesses] == [h.packages for h in example.harnesses]
    assert stale_reasons(from_config(load(tmp_path, None)), lock) == []


def test_alternate_interleaves_and_counts_repeats():
    calls: list[str] = []

    def a() -> float:
        calls.append("a")
        return 1.0

    def b() -> float:
        calls.append("b")
        return 2.0

    sa, sb = alternate(a, b, 4, warmup=1)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b", "b", "a"]
    row = Row("x", sa, sb, "t", True)
    assert (sa.median, sb.median, row.ratio, row.added) == (1.0, 2.0, 0.5, -1.0)
    assert Stats((3.0, 1.0, 2.0)).as_dict() == {"min": 1.0, "median": 2.0, "max": 3.0, "n": 3}
