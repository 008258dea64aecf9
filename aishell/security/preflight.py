"""The security checks a launch runs before it creates a container (SPEC section 8).

:func:`preflight` is the one entry point of the launch pipeline: argument and mount
validation (every launch), sensitive-file detection (interactive launches only, not
with ``--unsafe``, not with ``[security] detection = false``) and the Gitleaks
freshness check (interactive launches only). It returns warnings for the caller to print, asks before a launch
with HIGH findings on a terminal, and raises :class:`AishellError` for a refusal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aishell.errors import AishellError
from aishell.project.context import Context
from aishell.security import detection, gitleaks, validation

Ask = Callable[[str], bool]


def _origin(ctx: Context, key: str) -> str:
    source = ctx.config.manifest
    if source is not None and key in (source.data.get("run") or {}):
        line = source.line_of("run", key)
        where = f"{source.path}:{line}" if line else str(source.path)
        return f"{where} [run] {key}"
    return f"config [run] {key}"


def validate(ctx: Context, *, docker_args: Sequence[str] = (), mounts: Sequence[str] = (),
             ports: Sequence[str] = ()) -> list[validation.Risk]:
    """Risks in the config's ``[run]`` values and in one-off command-line additions."""
    run: dict[str, Any] = ctx.config.table("run")
    cfg_args = list(run.get("docker_args") or [])
    cfg_mounts = list(run.get("mounts") or [])
    cfg_ports = list(run.get("ports") or [])
    mode = str(ctx.config.table("network").get("mode", "open"))
    risks = validation.check_docker_args(cfg_args, origin=_origin(ctx, "docker_args"),
                                         network_mode=mode)
    risks += validation.check_mounts(cfg_mounts, origin=_origin(ctx, "mounts"))
    risks += validation.check_ports(cfg_ports, origin=_origin(ctx, "ports"))
    # A caller may pass the merged lists: what came from the config is checked above.
    cli = "command line"
    risks += validation.check_docker_args([a for a in docker_args if a not in cfg_args],
                                          origin=cli, network_mode=mode)
    risks += validation.check_mounts([m for m in mounts if m not in cfg_mounts], origin=cli)
    risks += validation.check_ports([p for p in ports if p not in cfg_ports], origin=cli)
    return risks


def terminal_ask(question: str) -> bool:
    """y/N on the terminal; anything but y/yes (or end of input) is no."""
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        raise
    return answer.strip().lower() in ("y", "yes")


def _has_tty() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def check_files(project: Path, security: dict[str, Any], *, ask: Ask | None,
                out: Callable[[str], None]) -> list[str]:
    """Detection: MEDIUM/LOW become warnings; HIGH asks (``ask``) or refuses (no TTY)."""
    result = detection.scan_project(project, security)
    by = result.by_severity()
    if by["high"]:
        lines = detection.render_lines(by["high"])
        if ask is None:
            raise AishellError(
                "sensitive files in the project (HIGH):\n  " + "\n  ".join(lines),
                hint="move them out of the project, list them in [security] allowlist "
                     "with a reason, or pass --unsafe to skip this check",
            )
        out("sensitive files in the project that the agent would see:")
        for line in detection.render_lines(result.findings):
            out("  " + line)
        if not ask("launch anyway?"):
            raise AishellError("launch cancelled: sensitive files in the project",
                               hint="add them to [security] allowlist with a reason, or "
                                    "move them out of the project")
        return []
    rest = by["medium"] + by["low"]
    if not rest:
        return []
    lines = detection.render_lines(rest)
    return ["sensitive files in the project (the agent can read them):\n  "
            + "\n  ".join(lines)]


def preflight(
    ctx: Context,
    *,
    interactive: bool,
    unsafe: bool,
    docker_args: Sequence[str] = (),
    mounts: Sequence[str] = (),
    ports: Sequence[str] = (),
    ask: Ask | None = None,
) -> list[str]:
    """Run every pre-launch check; return the warnings to print.

    Args:
        interactive: an interactive launch (``aishell``, ``aishell run``): detection and
            the Gitleaks freshness warning run. ``exec`` and ``gitleaks`` pass False:
            validation only.
        unsafe: ``--unsafe``: no detection.
        docker_args, mounts, ports: one-off additions from the command line (``-v``,
            ``-p``, extra engine arguments). The config's ``[run]`` values are read from
            ``ctx`` (entries equal to a config entry are not checked twice).
        ask: how to confirm HIGH findings; default: y/N on the terminal when stdin and
            stderr are terminals, else no confirmation is possible and HIGH refuses.

    Raises:
        AishellError: strict mode refused an argument or mount; HIGH findings were
            declined, or found with no terminal to confirm on.
    """
    security: dict[str, Any] = ctx.config.table("security")
    risks = validate(ctx, docker_args=docker_args, mounts=mounts, ports=ports)
    warnings = validation.enforce(risks, strict=bool(security.get("strict", False)))
    if interactive and not unsafe and security.get("detection", True) is not False:
        if ask is None and _has_tty():
            ask = terminal_ask
        warnings += check_files(ctx.project, security, ask=ask,
                                out=lambda line: print(line, file=sys.stderr))
    stale = gitleaks.freshness_warning(ctx) if interactive else None
    if stale:
        warnings.append(stale)
    return warnings
