"""The built-in harness catalog (SPEC section 6): short names → npm packages and more."""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class Harness:
    name: str
    package: str
    bins: tuple[str, ...]
    config_paths: tuple[str, ...] = ()  # under the host home, mounted read-write
    api_keys: tuple[str, ...] = ()  # passed by name only
    env: tuple[tuple[str, str], ...] = ()  # defaults that make it work in a container
    args: tuple[str, ...] = ()  # default arguments (before config harness_args)


CATALOG: dict[str, Harness] = {
    h.name: h
    for h in (
        Harness(
            "claude", "@anthropic-ai/claude-code", ("claude",),
            ("~/.claude", "~/.claude.json"),
            ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"),
            (("DISABLE_AUTOUPDATER", "1"),),
        ),
        Harness(
            "codex", "@openai/codex", ("codex",), ("~/.codex",),
            ("OPENAI_API_KEY", "CODEX_API_KEY"),
        ),
        Harness(
            "gemini", "@google/gemini-cli", ("gemini",), ("~/.gemini",),
            ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION"),
        ),
        Harness(
            "opencode", "opencode-ai", ("opencode",),
            ("~/.config/opencode", "~/.local/share/opencode"),
            ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENCODE_API_KEY"),
        ),
        Harness(
            "pi", "@mariozechner/pi-coding-agent", ("pi",), ("~/.pi",),
            ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY"),
        ),
        Harness("copilot", "@github/copilot", ("copilot",), ("~/.copilot",),
                ("GH_TOKEN", "GITHUB_TOKEN")),
        Harness("qwen", "@qwen-code/qwen-code", ("qwen",), ("~/.qwen",),
                ("OPENAI_API_KEY", "DASHSCOPE_API_KEY")),
    )
}


def nearest(name: str) -> str | None:
    """The catalog name closest to ``name``, for "did you mean" hints."""
    found = difflib.get_close_matches(name, list(CATALOG), n=1, cutoff=0.5)
    return found[0] if found else None
