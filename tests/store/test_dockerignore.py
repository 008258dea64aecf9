from __future__ import annotations

import pytest

from aishell.store.dockerignore import Matcher, parse


def excluded(rules: str, path: str) -> bool:
    return Matcher(parse(rules)).excluded(path)


@pytest.mark.parametrize(("rules", "path", "expected"), [
    ("*.log", "a.log", True),
    ("*.log", "dir/a.log", False),  # * does not cross directories
    ("**/*.log", "dir/sub/a.log", True),
    ("**/*.log", "a.log", True),
    ("secret", "secret/inner/file", True),  # a directory excludes its contents
    ("/secret", "secret", True),  # leading slash is the context root
    ("*.md\n!README.md", "README.md", False),  # exceptions re-include
    ("*.md\n!README.md", "NOTES.md", True),
    ("!README.md\n*.md", "README.md", True),  # last match wins
    ("# comment\n\n", "anything", False),
    ("file?.txt", "file1.txt", True),
    ("file?.txt", "file10.txt", False),
    ("[a-c].txt", "b.txt", True),
    ("[!a-c].txt", "b.txt", False),
    ("./build", "build/x", True),
])
def test_rules(rules, path, expected):
    assert excluded(rules, path) is expected


def test_no_rules_excludes_nothing():
    assert not Matcher([]).excluded("a/b")
