"""Sensitive-file detection over fixture trees (SPEC section 8)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aishell.security import detection
from aishell.security.detection import AllowEntry, Finding, render_lines, scan
from tests.fixtures_security import git, init_repo, make_tree

# One concrete file name per built-in pattern: (relative path, severity, pattern).
EVERY_PATTERN = [
    ("id_rsa", "high", "id_rsa"),
    ("id_dsa", "high", "id_dsa"),
    ("id_ecdsa", "high", "id_ecdsa"),
    ("id_ed25519", "high", "id_ed25519"),
    ("putty.ppk", "high", "*.ppk"),
    ("cert.p12", "high", "*.p12"),
    ("cert.pfx", "high", "*.pfx"),
    ("release.jks", "high", "*.jks"),
    ("android.keystore", "high", "*.keystore"),
    ("gcloud/application_default_credentials.json", "high",
     "application_default_credentials.json"),
    ("infra/terraform.tfstate", "high", "terraform.tfstate*"),
    ("infra/terraform.tfstate.backup", "high", "terraform.tfstate*"),
    (".pypirc", "high", ".pypirc"),
    (".netrc", "high", ".netrc"),
    ("config/master.key", "high", "master.key"),
    ("config/credentials.yml.enc", "high", "credentials*.yml.enc"),
    ("config/credentials.production.yml.enc", "high", "credentials*.yml.enc"),
    (".env", "medium", ".env"),
    (".env.local", "medium", ".env.*"),
    (".envrc", "medium", ".envrc"),
    ("tls/server.pem", "medium", "*.pem"),
    ("tls/server.key", "medium", "*.key"),
    ("kubeconfig", "medium", "kubeconfig"),
    ("home/.kube/config", "medium", ".kube/config"),
    (".npmrc", "medium", ".npmrc"),
    (".yarnrc.yml", "medium", ".yarnrc.yml"),
    (".terraformrc", "medium", ".terraformrc"),
    ("credentials.tfrc.json", "medium", "credentials.tfrc.json"),
    ("home/.docker/config.json", "medium", ".docker/config.json"),
    ("secret.txt", "medium", "secret.*"),
    ("secrets.yaml", "medium", "secrets.*"),
    ("vault.json", "medium", "vault.*"),
    ("token.txt", "medium", "token.*"),
    ("apikey.txt", "medium", "apikey.*"),
    ("private.conf", "medium", "private.*"),
    (".pgpass", "medium", ".pgpass"),
    (".my.cnf", "medium", ".my.cnf"),
    ("config/database.yml", "medium", "database.yml"),
    (".env.example", "low", ".env*example*"),
    (".env.sample", "low", ".env*sample*"),
    ("web/.env.local.example", "low", ".env*example*"),
]
HARMLESS = ["README.md", "src/main.py", "id_rsa.pub", "misc/config", "app/config.json",
            "environment.ts", "tokens.md", "keys.py", "secretary.txt", "docs/private_notes.md"]


def test_every_builtin_pattern_has_a_fixture():
    covered = {pattern for _, _, pattern in EVERY_PATTERN}
    assert covered == set(detection.HIGH + detection.MEDIUM + detection.LOW)


def test_every_pattern_is_found_with_its_severity(tmp_path):
    make_tree(tmp_path, [p for p, _, _ in EVERY_PATTERN] + HARMLESS)
    result = scan(tmp_path)
    got = {f.path: (f.severity, f.pattern) for f in result.findings}
    assert got == {p: (s, pat) for p, s, pat in EVERY_PATTERN}
    assert result.files_scanned == len(EVERY_PATTERN) + len(HARMLESS)


@pytest.mark.parametrize("name", ["ID_RSA", "Id_Ed25519", "SERVER.PEM", ".ENV", "Secrets.Json",
                                  "TERRAFORM.TFSTATE", ".Env.Example"])
def test_names_match_case_insensitively(tmp_path, name):
    make_tree(tmp_path, [name])
    (finding,) = scan(tmp_path).findings
    assert finding.path == name


def test_the_skip_list_is_never_entered(tmp_path):
    skipped = [f"{d}/id_rsa" for d in sorted(detection.SKIP_DIRS)]
    nested = ["pkg/node_modules/dep/.env", "a/b/.venv/lib/secret.txt"]
    kept = ["builder/id_rsa", "venvs/.env", "my.cache/token.txt"]
    make_tree(tmp_path, skipped + nested + kept)
    result = scan(tmp_path)
    assert sorted(f.path for f in result.findings) == sorted(kept)
    assert result.files_scanned == len(kept)


def test_one_walk_each_directory_scanned_once(tmp_path, monkeypatch):
    dirs = [f"d{i}/e{j}" for i in range(5) for j in range(4)]
    make_tree(tmp_path, [f"{d}/f.txt" for d in dirs] + ["d0/id_rsa", "d1/.env"])
    seen: list[str] = []
    real = os.scandir

    def counting(path):
        seen.append(str(path))
        return real(path)

    monkeypatch.setattr(detection.os, "scandir", counting)
    custom = {f"*.x{i}": "medium" for i in range(50)}  # many patterns: still one pass
    scan(tmp_path, custom_patterns=custom)
    # root + d0..d4 + 20 leaves, each exactly once, however many patterns there are
    assert len(seen) == 1 + 5 + 20
    assert len(set(seen)) == len(seen)


def test_symlinked_directories_are_not_followed(tmp_path):
    outside = make_tree(tmp_path / "outside", ["id_rsa"])
    project = make_tree(tmp_path / "project", ["main.py"])
    (project / "link").symlink_to(outside, target_is_directory=True)
    assert scan(project).findings == ()


def test_allowlist_by_path_directory_and_glob(tmp_path):
    make_tree(tmp_path, ["tests/fixtures/fake.pem", "tests/fixtures/deep/id_rsa",
                         "certs/dev.pem", "certs/prod.pem", "id_rsa", ".env"])
    allow = [
        AllowEntry("./.env", "documented dummy values"),
        AllowEntry("tests/fixtures/", "test fixtures"),
        AllowEntry("certs/DEV.*", "self-signed dev cert"),
    ]
    result = scan(tmp_path, allowlist=allow)
    assert sorted(f.path for f in result.findings) == ["certs/prod.pem", "id_rsa"]
    assert dict(result.allowed) == {
        ".env": "documented dummy values",
        "tests/fixtures/fake.pem": "test fixtures",
        "tests/fixtures/deep/id_rsa": "test fixtures",
        "certs/dev.pem": "self-signed dev cert",
    }


def test_custom_patterns_add_and_override(tmp_path):
    make_tree(tmp_path, ["app.secret", "server.pem", "deploy/prod.json", "other/prod.json",
                         "Notes.TXT"])
    custom = {"*.secret": "high", "*.pem": "low", "deploy/*.json": "medium"}
    got = {f.path: (f.severity, f.pattern) for f in scan(tmp_path, custom_patterns=custom).findings}
    assert got == {
        "app.secret": ("high", "*.secret"),
        "server.pem": ("low", "*.pem"),
        "deploy/prod.json": ("medium", "deploy/*.json"),
    }


def test_scan_project_reads_the_security_table(tmp_path):
    make_tree(tmp_path, ["a.secret", "id_rsa"])
    security = {"custom_patterns": {"*.secret": "high"},
                "allowlist": [{"path": "id_rsa", "reason": "fixture"}]}
    result = detection.scan_project(tmp_path, security)
    assert [f.path for f in result.findings] == ["a.secret"]
    assert result.allowed == (("id_rsa", "fixture"),)


def test_high_findings_git_does_not_ignore_may_be_committed(tmp_path):
    repo = init_repo(tmp_path / "repo")
    make_tree(repo, ["id_rsa", "keys/id_ed25519", "tracked/master.key", "ignored/id_dsa",
                     ".env"])
    (repo / ".gitignore").write_text("ignored/\ntracked/\n", encoding="utf-8")
    git(repo, "add", "-f", "tracked/master.key")  # tracked although ignored: committed
    result = scan(repo)
    assert result.in_git_repo
    flags = {f.path: f.may_be_committed for f in result.findings}
    assert flags == {"id_rsa": True, "keys/id_ed25519": True, "tracked/master.key": True,
                     "ignored/id_dsa": False, ".env": False}  # only HIGH findings are checked


def test_outside_a_git_repo_nothing_may_be_committed(tmp_path):
    make_tree(tmp_path / "plain", ["id_rsa"])
    result = scan(tmp_path / "plain")
    assert not result.in_git_repo
    assert [f.may_be_committed for f in result.findings] == [False]


def _findings(n: int, pattern: str = "*.pem", severity: str = "medium") -> list[Finding]:
    return [Finding(f"certs/c{i}.pem", severity, pattern) for i in range(n)]  # type: ignore[arg-type]


def test_three_of_a_kind_are_listed():
    assert render_lines(_findings(3)) == [
        "MEDIUM (may hold secrets):", "  certs/c0.pem", "  certs/c1.pem", "  certs/c2.pem"]


def test_more_than_three_of_a_kind_collapse_to_a_count_with_two_examples():
    lines = render_lines([*_findings(7), Finding(".env", "medium", ".env"),
                          Finding("id_rsa", "high", "id_rsa", may_be_committed=True)])
    assert lines == [
        "HIGH (credentials an agent should never see):",
        "  id_rsa  (may be committed)",
        "MEDIUM (may hold secrets):",
        "  7 files match *.pem (e.g. certs/c0.pem, certs/c1.pem)",
        "  .env",
    ]


def test_collapsed_high_group_counts_committed_files():
    fs = [Finding(f"k{i}.p12", "high", "*.p12", may_be_committed=i % 2 == 0) for i in range(5)]
    assert render_lines(fs)[1] == "  5 files match *.p12 (e.g. k0.p12, k1.p12, 3 may be committed)"


def test_matcher_prefers_high_then_low_then_medium():
    m = detection.Matcher()
    assert m.match("master.key").severity == "high"  # not *.key (medium)
    assert m.match(".env.example").severity == "low"  # not .env.* (medium)
    assert m.match("id_rsa.pub") is None


def test_scan_uses_no_pattern_walks_for_big_trees(tmp_path):
    """A 5,000-file tree scans fast (the 100,000-file benchmark is bench/detection.py)."""
    make_tree(tmp_path, [f"d{i // 100}/f{i}.py" for i in range(5000)] + ["d3/.env"])
    result = scan(tmp_path)
    assert result.files_scanned == 5001
    assert [f.path for f in result.findings] == ["d3/.env"]
    assert result.seconds < 1.0


def test_paths_are_relative_and_slash_separated(tmp_path: Path):
    make_tree(tmp_path, ["a/b/c/id_rsa"])
    assert scan(tmp_path).findings[0].path == "a/b/c/id_rsa"
