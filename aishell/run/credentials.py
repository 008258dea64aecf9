"""Credentials kept out of the sandbox: which keys a harness's brokers carry (pure, except
for running a key's command on the host at launch).

In ``[credentials] mode = "broker"`` (the default whenever a key is found) a catalog
harness's API key never enters its sandbox. The sandbox gets a well-formed placeholder in
the key's variable and the harness's base-URL variable pointing at a forwarder on its
loopback (``http://127.0.0.1:PORT``), which carries each connection to a broker of its
own in the home's egress service: an nginx that forwards only to that API (or to the
gateway the user configured on the host), over TLS checked against the host's CA bundle,
and sets the user's key in that API's header on every request, whatever the request
carried. The key reaches the broker over the service's control socket and lives only in
its memory-backed directory (docs/security.md, "Credentials").

Key sources, per provider: the global config's ``[credentials] <provider> = { command =
"…" }`` (run on the host at launch, like AWS ``credential_process``), ``{ file = "…" }``
or ``{ env = "NAME" }``; else the provider's own variables in the host environment.
Only the global config may name a source: a project's ``aishell.toml`` could otherwise
run a command on the host or read any file. A project may set ``mode``; one that sets
``"env"`` is warned about on every launch (it hands the keys to whatever the project runs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from aishell.errors import AishellError, ConfigError
from aishell.project.config import Config

MODES = ("broker", "env")
FIRST_PORT = 3130  # the forwarders of the brokers, on the sandbox's loopback
# A key the broker can carry in an nginx string (the service checks the same).
_KEY = re.compile(r"^[A-Za-z0-9._~+/=:-]{1,4096}$")
SOURCES_HINT = 'write { command = "pass show anthropic" }, { file = "~/.keys/anthropic" } or { env = "NAME" }'


@dataclass(frozen=True)
class KeyVar:
    name: str  # the variable the harness reads
    header: str  # the header the API takes it in
    prefix: str  # "Bearer " or ""
    placeholder: str  # what the sandbox sees instead: well-formed, no part of any key


@dataclass(frozen=True)
class Provider:
    name: str
    upstream: str  # the API, scheme://host[:port]
    base_url_var: str
    keys: tuple[KeyVar, ...]
    port: int


_PLACE = "aishellbrokerplaceholder"
PROVIDERS: dict[str, Provider] = {p.name: p for p in (
    Provider("anthropic", "https://api.anthropic.com", "ANTHROPIC_BASE_URL", (
        KeyVar("ANTHROPIC_API_KEY", "x-api-key", "", f"sk-ant-api03-{_PLACE}-{'0' * 70}AA"),
        KeyVar("CLAUDE_CODE_OAUTH_TOKEN", "Authorization", "Bearer ",
               f"sk-ant-oat01-{_PLACE}-{'0' * 70}AA"),
    ), FIRST_PORT),
    Provider("openai", "https://api.openai.com", "OPENAI_BASE_URL", (
        KeyVar("CODEX_API_KEY", "Authorization", "Bearer ", f"sk-proj-{_PLACE}{'0' * 100}"),
        KeyVar("OPENAI_API_KEY", "Authorization", "Bearer ", f"sk-proj-{_PLACE}{'0' * 100}"),
    ), FIRST_PORT + 1),
    Provider("gemini", "https://generativelanguage.googleapis.com", "GOOGLE_GEMINI_BASE_URL", (
        KeyVar("GEMINI_API_KEY", "x-goog-api-key", "", "AIzaSyAishellBrokerPlaceholder000000"),
        KeyVar("GOOGLE_API_KEY", "x-goog-api-key", "", "AIzaSyAishellBrokerPlaceholder000000"),
    ), FIRST_PORT + 2),
)}
# Which providers each catalog harness's keys belong to, and the path its base URL needs
# below the host (Claude Code appends /v1/messages itself; OpenCode and codex want /v1).
HARNESS_PROVIDERS: dict[str, tuple[tuple[str, str], ...]] = {
    "claude": (("anthropic", ""),),
    "codex": (("openai", "/v1"),),
    "gemini": (("gemini", ""),),
    "opencode": (("anthropic", "/v1"), ("openai", "/v1")),
}
# Every header a key may travel in: the broker drops them all from what the sandbox sends.
CREDENTIAL_HEADERS = ("x-api-key", "Authorization", "x-goog-api-key")


@dataclass(frozen=True)
class Brokered:
    """One provider's broker for one launch (no key: that is resolved at launch)."""

    provider: str
    key_var: str  # the variable whose value the broker sets (its placeholder inside)
    source: str  # "env NAME", "command", "file PATH": where the key comes from
    upstream: str  # scheme://host[:port] the broker forwards to
    sandbox_url: str  # the base URL the harness is given
    port: int

    def spec(self) -> dict[str, str]:
        """The broker as the egress service reads it (policy.json)."""
        parts = urlsplit(self.upstream)
        return {"name": self.provider, "upstream": self.upstream, "host": parts.netloc,
                "sni": parts.hostname or "", "clear": ",".join(CREDENTIAL_HEADERS)}


def mode_of(cfg: Config) -> str:
    """``[credentials] mode``: checked in every file, the project's wins."""
    mode = "broker"
    for source in cfg.sources:
        table = source.data.get("credentials")
        if isinstance(table, dict) and "mode" in table:
            if table["mode"] not in MODES:
                raise ConfigError(f"[credentials] mode = {table['mode']!r} is not one of "
                                  f"{', '.join(map(repr, MODES))}", path=source.path,
                                  line=source.line_of("credentials", "mode"),
                                  hint='write mode = "broker" (the default) or "env"')
            mode = str(table["mode"])
    return mode


def _sources(cfg: Config) -> dict[str, dict[str, str]]:
    """The global config's key sources; a project naming one is an error."""
    out: dict[str, dict[str, str]] = {}
    for source in cfg.sources:
        table = source.data.get("credentials")
        if not isinstance(table, dict):
            continue
        for name, value in table.items():
            if name == "mode":
                continue
            line = source.line_of("credentials", name)
            if source is cfg.manifest:
                raise ConfigError(f"[credentials] {name}: a project may not name a key "
                                  "source (it would run or read it on your machine)",
                                  path=source.path, line=line,
                                  hint="move it to the global config (~/.config/aishell/config.toml)")
            if name not in PROVIDERS:
                raise ConfigError(f"[credentials] {name}: unknown provider", path=source.path,
                                  line=line, hint=f"one of {', '.join(PROVIDERS)}")
            ok = isinstance(value, dict) and len(value) == 1 and next(iter(value)) in (
                "command", "file", "env") and isinstance(next(iter(value.values())), str)
            if not ok:
                raise ConfigError(f"[credentials] {name}: not a key source", path=source.path,
                                  line=line, hint=SOURCES_HINT)
            out[name] = dict(value)
    return out


def _project_env_mode(cfg: Config) -> str | None:
    """The warning when the project's own aishell.toml sets ``mode = "env"``."""
    table = (cfg.manifest.data.get("credentials") if cfg.manifest else None) or {}
    if not isinstance(table, dict) or table.get("mode") != "env" or cfg.manifest is None:
        return None
    line = cfg.manifest.line_of("credentials", "mode")
    where = f"{cfg.manifest.path}:{line}" if line else str(cfg.manifest.path)
    return (f'{where}: [credentials] mode = "env": this project has API keys passed into its '
            "sandbox, where anything it runs can read them")


def plan_brokers(cfg: Config, harness: str, environ: Mapping[str, str], *,
                 network_mode: str) -> tuple[list[Brokered], list[str]]:
    """The brokers of a launch of ``harness`` and the notices to show (pure: no key read)."""
    wanted = HARNESS_PROVIDERS.get(harness, ())
    if not wanted:
        return [], []
    if mode_of(cfg) == "env":
        warning = _project_env_mode(cfg)
        return [], [warning] if warning else []
    sources = _sources(cfg)
    out: list[Brokered] = []
    for index, (name, path) in enumerate(wanted):
        provider = PROVIDERS[name]
        configured = sources.get(name)
        if configured is not None:
            kind, value = next(iter(configured.items()))
            key_var = provider.keys[0].name
            source = f"{kind} {value}" if kind != "command" else "command"
            if kind == "env":
                source = f"env {value}"
        else:
            found = next((k for k in provider.keys if environ.get(k.name)), None)
            if found is None:
                continue
            key_var, source = found.name, f"env {found.name}"
        gateway = environ.get(provider.base_url_var, "").strip()
        upstream, gateway_path = provider.upstream, ""
        if gateway:
            parts = urlsplit(gateway)
            if parts.scheme in ("http", "https") and parts.netloc:
                upstream = f"{parts.scheme}://{parts.netloc}"
                gateway_path = parts.path.rstrip("/")
        port = FIRST_PORT + index
        out.append(Brokered(name, key_var, source, upstream,
                            f"http://127.0.0.1:{port}{gateway_path or path}", port))
    notices: list[str] = []
    if out and network_mode == "none":
        names = ", ".join(b.provider for b in out)
        notices.append(f'[network] mode = "none": {harness} cannot reach its API ({names}); '
                       "no key is passed in")
    return out, notices


def read_key(cfg: Config, broker: Brokered, environ: Mapping[str, str]) -> str:
    """The key of ``broker``, read now (a command runs on the host).

    Raises:
        AishellError: the command failed, the file or variable is missing or empty, or the
            key has characters the broker cannot carry; never the key in the message.
    """
    from aishell import process  # noqa: PLC0415

    configured = _sources(cfg).get(broker.provider)
    where = f"[credentials] {broker.provider}"
    if configured is None:
        value = environ.get(broker.key_var, "")
    elif "command" in configured:
        result = process.run(["sh", "-c", configured["command"]], check=False)
        if result.returncode != 0:
            raise AishellError(f"{where}: the key command exited {result.returncode}; "
                               "the sandbox was not started",
                               hint=f"run it yourself: {configured['command']}")
        value = result.stdout
    elif "file" in configured:
        path = Path(configured["file"]).expanduser()
        try:
            value = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise AishellError(f"{where}: cannot read {path}: {exc.strerror}",
                               hint="the sandbox was not started") from exc
    else:
        value = environ.get(configured["env"], "")
    key = value.strip()
    if not key:
        raise AishellError(f"{where}: the key is empty ({broker.source})",
                           hint="the sandbox was not started")
    if not _KEY.match(key):
        raise AishellError(f"{where}: the key has characters the broker cannot carry",
                           hint='letters, digits and "._~+/=:-"; or set [credentials] mode = "env"')
    return key


def headers(broker: Brokered, key: str) -> list[tuple[str, str]]:
    """What the broker sets on every request it forwards (pure)."""
    var = next(k for k in PROVIDERS[broker.provider].keys if k.name == broker.key_var)
    return [(var.header, f"{var.prefix}{key}")]


def placeholders(brokers: Sequence[Brokered]) -> dict[str, str]:
    """The variables the sandbox gets instead: each key's placeholder and base URL."""
    env: dict[str, str] = {}
    for b in brokers:
        var = next(k for k in PROVIDERS[b.provider].keys if k.name == b.key_var)
        env[var.name] = var.placeholder
        env[PROVIDERS[b.provider].base_url_var] = b.sandbox_url
    return env


def withheld(brokers: Sequence[Brokered]) -> set[str]:
    """The host variables a brokered launch does not pass in (every key of its providers)."""
    return {k.name for b in brokers for k in PROVIDERS[b.provider].keys}
