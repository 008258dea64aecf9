"""The built-in harness catalog (SPEC section 6): short names → npm packages and more.

Besides the package and its bins, each entry says what a harness needs to work in a
read-only, containerised env: which host config paths to mount, which API-key
variables to pass (by name only), and the defaults that turn off its self-updater and
its own inner sandbox (which cannot work inside a container: the container is the
sandbox).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace

# Self-updaters cannot write to the read-only env, and a harness that replaced itself
# would no longer be the locked build: every sandbox gets all of these, so a harness
# started by hand from `aishell shell` is quiet too.
AUTOUPDATE_OFF: tuple[tuple[str, str], ...] = (
    ("DISABLE_AUTOUPDATER", "1"),  # Claude Code
    ("OPENCODE_DISABLE_AUTOUPDATE", "1"),  # OpenCode
)
# Inner sandboxes that would try to start Docker/Podman, Landlock or bubblewrap inside
# the container (and fail there): off, by environment where the harness reads one.
INNER_SANDBOX_OFF: tuple[tuple[str, str], ...] = (
    ("GEMINI_SANDBOX", "false"),  # Gemini CLI (env wins over settings.json)
    ("QWEN_SANDBOX", "false"),  # Qwen Code (a Gemini CLI fork)
)

# Gemini CLI and Qwen Code read a system settings file that overrides user settings;
# it is the only switch for their auto-update (no environment variable exists).
_GEMINI_SYSTEM = json.dumps(
    {"general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
     "tools": {"sandbox": False}},
    indent=2, sort_keys=True,
) + "\n"
# Gemini CLI's system defaults rank below the user's settings: its usage statistics
# (sent to a Google logging host a sandbox has no business reaching) are off unless the
# user turns them on.
_GEMINI_DEFAULTS = json.dumps({"privacy": {"usageStatisticsEnabled": False}}, indent=2) + "\n"
# With GOOGLE_GEMINI_BASE_URL set, Gemini CLI picks the auth type "gateway", which its own
# headless check rejects ("Invalid auth method selected.", exit 41); an API key it is.
_GEMINI_GATEWAY_DEFAULTS = json.dumps(
    {"privacy": {"usageStatisticsEnabled": False},
     "security": {"auth": {"selectedType": "gemini-api-key"}}},
    indent=2, sort_keys=True,
) + "\n"
# Codex reads /etc/codex/config.toml below the user's config; the launch also passes
# the same settings with -c, which wins over every config file.
# Its Statsig metrics (ab.chatgpt.com) and curated-plugin sync (github.com) are off by
# default there too: a sandbox reaches what its work needs, and a user's config can turn
# them back on.
_CODEX_SYSTEM = ('check_for_update_on_startup = false\nsandbox_mode = "danger-full-access"\n\n'
                 "[analytics]\nenabled = false\n\n[features]\nplugins = false\n")


@dataclass(frozen=True)
class Harness:
    name: str
    package: str
    bins: tuple[str, ...]
    config_paths: tuple[str, ...] = ()  # under the host home, mounted read-write
    api_keys: tuple[str, ...] = ()  # passed by name only
    env: tuple[tuple[str, str], ...] = ()  # defaults that make it work in a container
    args: tuple[str, ...] = ()  # default arguments (before config harness_args)
    seed_files: tuple[tuple[str, str], ...] = ()  # config files created on the host if missing
    system_files: tuple[tuple[str, str], ...] = ()  # container path → content, mounted read-only
    # The same, replacing those of the same path when the harness is pointed at a gateway
    # (one of its ``*_BASE_URL`` gateway variables is set).
    gateway_files: tuple[tuple[str, str], ...] = ()
    inner_sandbox: str = ""  # what aishell sets the harness's own sandbox to, said once
    skip_permissions_flag: str = ""  # added unless [run] skip_permissions = false
    # Options that choose the permission mode themselves: with one of them given, the
    # flag is left out (Gemini CLI refuses --yolo next to --approval-mode).
    permission_options: tuple[str, ...] = ()
    # Hosts its launches may reach in [network] mode = "allowlist": its API, sign-in and
    # the telemetry it fails without (see docs/security.md, "Network modes").
    hosts: tuple[str, ...] = ()
    # Variables that point it at a model gateway (LiteLLM, Bedrock, Vertex, a company
    # proxy), passed by name when set on the host; the host of each ``*_BASE_URL`` among
    # them is allowed in allowlist mode (docs/running.md, "Model gateways").
    gateway: tuple[str, ...] = ()
    # Defaults added when it is pointed at a gateway (a ``*_BASE_URL`` of ``gateway`` set).
    gateway_env: tuple[tuple[str, str], ...] = ()
    # (host variable, config key): a variable it does not read itself, handed over as
    # ``-c key="value"`` (codex reads its endpoint only from config).
    config_from_env: tuple[tuple[str, str], ...] = ()


CATALOG: dict[str, Harness] = {
    h.name: h
    for h in (
        Harness(
            "claude", "@anthropic-ai/claude-code", ("claude",),
            ("~/.claude", "~/.claude.json"),
            ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"),
            seed_files=(("~/.claude.json", "{}\n"),),
            skip_permissions_flag="--dangerously-skip-permissions",
            gateway=("ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_CUSTOM_HEADERS",
                     "ANTHROPIC_MODEL", "ANTHROPIC_SMALL_FAST_MODEL",
                     "ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_DEFAULT_SONNET_MODEL",
                     "ANTHROPIC_DEFAULT_HAIKU_MODEL", "CLAUDE_CODE_USE_BEDROCK",
                     "CLAUDE_CODE_USE_VERTEX", "ANTHROPIC_BEDROCK_BASE_URL",
                     "ANTHROPIC_VERTEX_BASE_URL", "ANTHROPIC_VERTEX_PROJECT_ID", "CLOUD_ML_REGION",
                     "AWS_REGION", "AWS_BEARER_TOKEN_BEDROCK", "CLAUDE_CODE_SKIP_BEDROCK_AUTH",
                     "CLAUDE_CODE_SKIP_VERTEX_AUTH", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"),
            # Pointed at a gateway, it would still reach Anthropic for its start-up probe,
            # telemetry and error reports.
            gateway_env=(("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),),
            hosts=("api.anthropic.com", "statsig.anthropic.com", "statsig.com",
                   "console.anthropic.com", "claude.ai", "sentry.io"),
            inner_sandbox=(
                "claude runs with --dangerously-skip-permissions: the container is the "
                "sandbox (set [run] skip_permissions = false to be asked again)"
            ),
        ),
        Harness(
            "codex", "@openai/codex", ("codex",), ("~/.codex",),
            ("OPENAI_API_KEY", "CODEX_API_KEY"),
            args=("-c", "check_for_update_on_startup=false",
                  "-c", 'sandbox_mode="danger-full-access"'),
            system_files=(("/etc/codex/config.toml", _CODEX_SYSTEM),),
            hosts=("api.openai.com", "auth.openai.com", "chatgpt.com"),
            gateway=("OPENAI_BASE_URL",),
            config_from_env=(("OPENAI_BASE_URL", "openai_base_url"),),
            inner_sandbox=(
                "codex's own sandbox (Landlock/bubblewrap) cannot run in a container: "
                "it runs with sandbox_mode = danger-full-access, the container is the sandbox"
            ),
        ),
        Harness(
            "gemini", "@google/gemini-cli", ("gemini",), ("~/.gemini",),
            ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION"),
            # The container is the sandbox and the project its workspace: trusted, and
            # tools run without asking (as claude's --dangerously-skip-permissions).
            env=(("GEMINI_CLI_TRUST_WORKSPACE", "true"),),
            system_files=(("/etc/gemini-cli/settings.json", _GEMINI_SYSTEM),
                          ("/etc/gemini-cli/system-defaults.json", _GEMINI_DEFAULTS)),
            gateway_files=(("/etc/gemini-cli/system-defaults.json", _GEMINI_GATEWAY_DEFAULTS),),
            skip_permissions_flag="--yolo",
            permission_options=("--yolo", "-y", "--approval-mode"),
            hosts=("generativelanguage.googleapis.com", "oauth2.googleapis.com",
                   "accounts.google.com", "cloudcode-pa.googleapis.com"),
            gateway=("GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_USE_VERTEXAI", "GEMINI_MODEL"),
            inner_sandbox=(
                "gemini's own sandbox (a nested container) is off (GEMINI_SANDBOX=false): "
                "the container is the sandbox"
            ),
        ),
        Harness(
            "opencode", "opencode-ai", ("opencode",),
            ("~/.config/opencode", "~/.local/share/opencode"),
            ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENCODE_API_KEY"),
            hosts=("opencode.ai", "models.dev", "api.openai.com", "api.anthropic.com"),
            gateway=("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "OPENCODE_CONFIG_CONTENT",
                     "OPENCODE_CONFIG", "OPENCODE_DISABLE_MODELS_FETCH"),
        ),
        Harness(
            "pi", "@mariozechner/pi-coding-agent", ("pi",), ("~/.pi",),
            ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY"),
            hosts=("api.anthropic.com", "api.openai.com", "generativelanguage.googleapis.com"),
        ),
        Harness("copilot", "@github/copilot", ("copilot",), ("~/.copilot",),
                ("GH_TOKEN", "GITHUB_TOKEN"),
                hosts=("github.com", "api.github.com", "*.githubcopilot.com")),
        Harness(
            "qwen", "@qwen-code/qwen-code", ("qwen",), ("~/.qwen",),
            ("OPENAI_API_KEY", "DASHSCOPE_API_KEY"),
            system_files=(("/etc/qwen-code/settings.json", _GEMINI_SYSTEM),),
            hosts=("dashscope.aliyuncs.com", "dashscope-intl.aliyuncs.com", "chat.qwen.ai"),
            inner_sandbox=(
                "qwen's own sandbox (a nested container) is off (QWEN_SANDBOX=false): "
                "the container is the sandbox"
            ),
        ),
    )
}


def nearest(name: str, extra: list[str] | None = None) -> str | None:
    """The catalog name (or one of ``extra``) closest to ``name``, for "did you mean" hints."""
    import difflib  # noqa: PLC0415 - only on this path (keeps lock --check lean)

    found = difflib.get_close_matches(name, [*CATALOG, *(extra or [])], n=1, cutoff=0.5)
    return found[0] if found else None


def _npm_name(spec: str) -> str:
    """``npm:@scope/pkg@range`` → ``@scope/pkg``."""
    body = spec.removeprefix("npm:")
    at = body.find("@", 1)
    return body if at == -1 else body[:at]


def lookup(name: str, manifest: Mapping[str, object] | None = None) -> Harness | None:
    """The harness ``name``: the manifest's ``[harnesses]`` entry first, else the catalog's."""
    base = CATALOG.get(name)
    if manifest is None or name not in manifest:
        return base
    spec = manifest[name]
    package = base.package if base else name
    bins: tuple[str, ...] = base.bins if base else (name,)
    if isinstance(spec, dict):
        package = str(spec.get("npm", package))
        declared = spec.get("bin")
        if isinstance(declared, str):
            bins = (declared,)
        elif isinstance(declared, list) and declared:
            bins = tuple(str(b) for b in declared)
    elif isinstance(spec, str) and spec.startswith("npm:"):
        package = _npm_name(spec)
    if base is not None:
        return replace(base, package=package, bins=bins)
    return Harness(name, package, bins)
