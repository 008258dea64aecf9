"""The command line: parse, resolve one Context, call a command, render, return a code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from aishell import __version__

COMMANDS = ("shell", "exec", "check", "info", "build", "gitleaks", "verify")


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    flag_default: Any = argparse.SUPPRESS if suppress else False
    parser.add_argument("--project", metavar="DIR", default=default,
                        help="project directory (default: nearest parent with aishell.toml, else .)")
    parser.add_argument("-v", "--verbose", action="store_true", default=flag_default,
                        help="show more (every build line, commands run)")
    parser.add_argument("-q", "--quiet", action="store_true", default=flag_default,
                        help="show only errors")
    parser.add_argument("--no-color", action="store_true", default=flag_default,
                        help="no colours (NO_COLOR is honoured too)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aishell",
        description="Run AI coding agents in ephemeral containers, pinned by aishell.lock.",
    )
    parser.add_argument("--version", action="version", version=f"aishell {__version__}")
    _global_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("shell", parents=[common], help="a login shell in the sandbox (the default)")
    p.add_argument("--unsafe", action="store_true",
                   help="skip the sensitive-file check before the launch")
    p = sub.add_parser("exec", parents=[common], help="run one command in a fresh sandbox",
                       usage="aishell exec [options] [--] COMMAND [ARGS...]")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="the command and its arguments")

    p = sub.add_parser("gitleaks", parents=[common],
                       help="scan the project for secrets with Gitleaks, in a sandbox",
                       usage="aishell gitleaks [options] [--] [GITLEAKS ARGS...]")
    p.add_argument("gitleaks_args", nargs=argparse.REMAINDER,
                   help="passed to gitleaks (default: scan the project's files)")

    p = sub.add_parser("check", parents=[common], help="check the engine, images and paths")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("info", parents=[common], help="versions, paths and the engine")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--foundation", action="store_true",
                   help="print the foundation image's Dockerfile")

    p = sub.add_parser("build", parents=[common], help="build the foundation image if missing")
    p.add_argument("--force", action="store_true", help="rebuild even when the tag exists")

    p = sub.add_parser("verify", parents=[common],
                       help="recompute env volumes' tree digests and compare with their markers")
    p.add_argument("env", nargs="*", metavar="ENV",
                   help="env ids or volume names (prefixes allowed)")
    p.add_argument("--all", action="store_true", help="verify every env volume")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _context(ns: argparse.Namespace) -> Any:
    from aishell.context import Context  # noqa: PLC0415 - keeps --version/--help fast

    return Context.create(
        ns.project, verbose=ns.verbose, quiet=ns.quiet, no_color=ns.no_color,
        json=getattr(ns, "json", False),
    )


def _dispatch(ns: argparse.Namespace) -> int:  # noqa: PLR0911 - one return per command
    command = ns.command or "shell"
    if ns.verbose:
        from aishell import process  # noqa: PLC0415

        process.VERBOSE = True
    ctx = _context(ns)
    if command == "shell":
        from aishell.commands import launch  # noqa: PLC0415

        return launch.shell(ctx, unsafe=bool(getattr(ns, "unsafe", False)))
    if command == "exec":
        from aishell.commands import launch  # noqa: PLC0415

        cmd = list(ns.cmd)
        if cmd[:1] == ["--"]:
            cmd = cmd[1:]
        return launch.exec_command(ctx, cmd)
    if command == "gitleaks":
        from aishell.commands import gitleaks  # noqa: PLC0415

        extra = list(ns.gitleaks_args)
        if extra[:1] == ["--"]:
            extra = extra[1:]
        result = gitleaks.scan(ctx, extra)
        gitleaks.print_result(ctx, result)
        return result.exit_code
    if command == "check":
        from aishell.commands import doctor  # noqa: PLC0415
        from aishell.render_doctor import print_findings  # noqa: PLC0415

        findings = doctor.check(ctx)
        print_findings(ctx, findings)
        return 1 if any(f.status == "fail" for f in findings) else 0
    if command == "info":
        from aishell.commands import doctor  # noqa: PLC0415
        from aishell.render_doctor import print_info  # noqa: PLC0415

        if ns.foundation:
            from aishell.commands.launch import foundation_for  # noqa: PLC0415

            print(foundation_for(ctx).dockerfile(), end="")
        else:
            print_info(ctx, asdict(doctor.info(ctx)))
        return 0
    if command == "build":
        from aishell.commands import launch  # noqa: PLC0415

        tag = launch.ensure_image(ctx, force=ns.force)
        if not ctx.quiet:
            print(tag)
        return 0
    # Commands with their own handler function (argparse restricts the choices).
    return _HANDLERS[command](ctx, ns)


def _verify(ctx: Any, ns: argparse.Namespace) -> int:
    from aishell import render  # noqa: PLC0415
    from aishell.commands import verify  # noqa: PLC0415
    from aishell.errors import AishellError, UsageError  # noqa: PLC0415
    from aishell.render_verify import print_report  # noqa: PLC0415

    if ns.all and ns.env:
        raise UsageError("pass env ids or --all, not both")
    if not ns.all and not ns.env:
        raise AishellError(
            "verifying this project's env needs its aishell.lock, which this build cannot read yet",
            hint="`aishell verify --all` checks every env volume; `aishell verify ENV_ID` one",
        )
    on_env = None if ctx.quiet or ctx.json else (lambda v: render.err(f"verifying {v}…"))
    report = verify.verify(ctx.engine, ctx.paths, wanted=None if ns.all else ns.env,
                           on_wait=render.err, on_env=on_env)
    print_report(ctx, report)
    return 0 if report.ok else 1


_HANDLERS: dict[str, Callable[[Any, argparse.Namespace], int]] = {"verify": _verify}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (the console script passes it to sys.exit)."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        ns = parser.parse_args(args)
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return int(exc.code or 0)
    from aishell import errors_report  # noqa: PLC0415

    return errors_report.guard(lambda: _dispatch(ns), verbose=bool(ns.verbose))


def entry() -> None:
    sys.exit(main())
