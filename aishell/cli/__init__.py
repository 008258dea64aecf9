"""The command line: parse, resolve one Context, call a command, render, return a code.

`aishell HARNESS [ARGS…]` is short for `aishell run HARNESS [ARGS…]`. Everything after
the harness name belongs to the harness (``--name``, ``--json``… included); aishell's
own options go before it. That split is done here, before argparse sees anything, so
no harness flag can ever be mistaken for one of aishell's.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aishell import __version__

if TYPE_CHECKING:
    from pathlib import Path

COMMANDS = ("shell", "run", "exec", "attach", "ps", "stop", "migrate", "gitleaks", "check",
            "info", "build", "sync", "gc", "store", "pin", "unpin", "rollback", "verify")
# Options of aishell (global and `run`) that take a value, so the harness name is found
# by skipping them; `--opt=value` and `-eNAME` forms are a single word anyway.
VALUE_OPTIONS = frozenset({"--project", "--name", "-e", "--env", "--volume", "-p", "--publish",
                           "--substituter"})


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    flag_default: Any = argparse.SUPPRESS if suppress else False
    parser.add_argument("--project", metavar="DIR", default=default,
                        help="project directory (default: nearest parent with aishell.toml)")
    parser.add_argument("-v", "--verbose", action="store_true", default=flag_default,
                        help="show more (every build line, commands run)")
    parser.add_argument("-q", "--quiet", action="store_true", default=flag_default,
                        help="show only errors")
    parser.add_argument("--no-color", action="store_true", default=flag_default,
                        help="no colours (NO_COLOR is honoured too)")


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", help="sandbox name (default: the harness, or `shell`)")
    parser.add_argument("-d", "--detach", action="store_true",
                        help="run in tmux session `main` in the background (join: aishell attach)")
    parser.add_argument("-e", "--env", action="append", default=[], metavar="NAME[=VALUE]",
                        help="set a variable, or pass the host's value through (repeatable)")
    parser.add_argument("--volume", action="append", default=[], metavar="SRC[:DST][:ro]",
                        help="mount a host path (repeatable)")
    parser.add_argument("-p", "--publish", action="append", default=[],
                        metavar="[IP:]HOST:CONT[/proto]", help="publish a port (repeatable)")
    parser.add_argument("--unsafe", action="store_true",
                        help="skip the sensitive-file check before launch")
    parser.add_argument("--locked", action="store_true",
                        help="fail if aishell.lock is out of date (no implicit lock)")
    parser.add_argument("--frozen", action="store_true",
                        help="use aishell.lock as it is, without checking aishell.toml")
    parser.add_argument("--offline", action="store_true",
                        help="install the env only from the download cache")
    _substituter_options(parser)


def _substituter_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--substituter", action="append", default=[], metavar="REF",
                        help="an image registry path to fetch the env from before building "
                        "(repeatable; tried before [store] substituters)")
    parser.add_argument("--no-substitute", action="store_true",
                        help="fetch the env from no substituter (the local archive still counts)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aishell",
        description="Run AI coding agents in ephemeral containers, pinned by aishell.lock.",
        epilog="`aishell HARNESS [ARGS…]` is short for `aishell run HARNESS [ARGS…]`.",
    )
    parser.add_argument("--version", action="version", version=f"aishell {__version__}")
    _global_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("shell", parents=[common], help="a login shell in the sandbox (the default)")
    _run_options(p)
    p = sub.add_parser("run", parents=[common], help="run a harness in a sandbox",
                       usage="aishell run [options] [HARNESS [ARGS...]]")
    _run_options(p)
    p = sub.add_parser("exec", parents=[common], help="run one command in a fresh sandbox",
                       usage="aishell exec [options] [--] COMMAND [ARGS...]")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="the command and its arguments")
    p = sub.add_parser("attach", parents=[common], help="join a running sandbox",
                       usage="aishell attach [options] NAME [-- COMMAND...]")
    p.add_argument("sandbox", metavar="NAME")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="a command to run instead of joining")
    p = sub.add_parser("ps", parents=[common], help="this project's sandboxes")
    p.add_argument("-a", "--all", action="store_true", help="every project's sandboxes")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = sub.add_parser("stop", parents=[common], help="stop a sandbox")
    p.add_argument("sandbox", metavar="NAME")
    p.add_argument("-t", "--time", type=int, default=10, help="seconds before it is killed")
    p = sub.add_parser("migrate", parents=[common],
                       help="convert the original .aishell/config.yaml into aishell.toml")
    p.add_argument("--dry-run", action="store_true", help="print the TOML, write nothing")
    p.add_argument("--force", action="store_true", help="overwrite an existing aishell.toml")

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

    p = sub.add_parser("sync", parents=[common],
                       help="build what the lock needs on this machine: images and the env volume")
    p.add_argument("--locked", action="store_true", help="fail if aishell.lock is out of date")
    p.add_argument("--frozen", action="store_true",
                   help="use aishell.lock as it is, without checking aishell.toml")
    p.add_argument("--offline", action="store_true", help="install only from the download cache")
    p.add_argument("--check", action="store_true",
                   help="build nothing; exit 1 when anything is missing")
    p.add_argument("--force", action="store_true", help="rebuild the images and the env")
    _substituter_options(p)
    p.add_argument("--rebuild-check", action="store_true",
                   help="also build the env locally and compare its tree digest (exit 1 if not equal)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _store_commands(sub, common)

    from aishell.cli import lock as cli_lock  # noqa: PLC0415 - argparse only, no heavy imports

    cli_lock.add_parsers(sub, common)
    p = sub.add_parser("verify", parents=[common],
                       help="recompute env volumes' tree digests and compare with their markers")
    p.add_argument("env", nargs="*", metavar="ENV",
                   help="env ids or volume names (prefixes allowed)")
    p.add_argument("--all", action="store_true", help="verify every env volume")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _store_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("gc", parents=[common], help="remove store items no project, pin or container needs")
    p.add_argument("--dry-run", action="store_true", help="show what would be removed; remove nothing")
    p.add_argument("--older-than", metavar="DURATION",
                   help="grace period: only remove items older than this (30d, 12h, 90m; default 1h)")
    p.add_argument("--keep-generations", metavar="N", type=int,
                   help="generations per project kept for rollback (default 3)")
    p.add_argument("--max-freed", metavar="SIZE", help="stop once this much is freed (e.g. 10G)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("store", parents=[common], help="inspect the store")
    store_sub = p.add_subparsers(dest="store_command", metavar="COMMAND", required=True)
    ls = store_sub.add_parser("ls", parents=[common],
                              help="every item: kind, size, created, last used, the roots that keep it")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    from aishell.cli import substitute as cli_substitute  # noqa: PLC0415 - argparse only

    cli_substitute.add_parsers(store_sub, common)

    p = sub.add_parser("pin", parents=[common], help="make this project's env and images a named root")
    p.add_argument("name", nargs="?", help="the pin's name (default: the project directory's name)")
    p.add_argument("--list", action="store_true", help="list the pins")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("unpin", parents=[common], help="drop a named root")
    p.add_argument("name", help="the pin to drop")

    p = sub.add_parser("rollback", parents=[common],
                       help="restore the project's previous aishell.lock from its recorded generation")
    p.add_argument("--to", metavar="N", type=int, help="the generation to restore (default: the previous)")
    p.add_argument("--list", action="store_true", help="list the recorded generations")
    p.add_argument("--dry-run", action="store_true", help="say what would be restored")
    p.add_argument("--force", action="store_true",
                   help="overwrite an aishell.lock that no generation recorded")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _split(args: Sequence[str]) -> tuple[list[str], str | None, list[str]]:
    """Options before the first plain word, that word, and everything after it."""
    i = 0
    while i < len(args):
        word = args[i]
        if word == "--":
            return list(args[:i]), None, list(args[i + 1:])
        if not word.startswith("-") or word == "-":
            return list(args[:i]), word, list(args[i + 1:])
        i += 2 if word in VALUE_OPTIONS else 1
    return list(args), None, []


def _project_harnesses(options: Sequence[str]) -> list[str]:
    """Harness names in the project's aishell.toml (unreadable → none; `run` reports it)."""
    import tomllib  # noqa: PLC0415 - only when the first word is not a built-in name
    from pathlib import Path  # noqa: PLC0415

    from aishell.project.config import MANIFEST, find_project  # noqa: PLC0415

    project: Path | None = None
    for i, word in enumerate(options):
        if word == "--project" and i + 1 < len(options):
            project = Path(options[i + 1])
        elif word.startswith("--project="):
            project = Path(word.split("=", 1)[1])
    root = project.resolve() if project else find_project(Path.cwd())
    try:
        data = tomllib.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
    table = data.get("harnesses")
    return list(table) if isinstance(table, dict) else []


class _Routed:
    """argv after the shortcut and `run` split: what argparse parses, and the harness part."""

    def __init__(self, parse: list[str], harness: str | None = None,
                 harness_args: Sequence[str] = ()) -> None:
        self.parse = parse
        self.harness = harness
        self.harness_args = list(harness_args)


def command_names(parser: argparse.ArgumentParser) -> list[str]:
    """Every subcommand the parser knows (other modules may add theirs)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return list(COMMANDS)


def route(args: Sequence[str], commands: Sequence[str] = COMMANDS) -> _Routed:
    """Find the command; for `run` and the shortcut, split off the harness and its args."""
    options, word, rest = _split(args)
    if word is None or (word in commands and word != "run"):
        return _Routed(list(args))
    from aishell.errors import UsageError  # noqa: PLC0415
    from aishell.lock import catalog  # noqa: PLC0415 - not on the path of --version or other commands

    if word == "run":
        more, harness, rest = _split(rest)
        options = [*options, *more]
    else:
        harness = word
        known = _project_harnesses(options)
        if word not in catalog.CATALOG and word not in known:
            near = catalog.nearest(word, [*known, *commands])
            raise UsageError(f"unknown command or harness `{word}`",
                             hint=f"did you mean `{near}`?" if near else "see `aishell --help`")
    if rest[:1] == ["--"]:  # `aishell run claude -- --version`
        rest = rest[1:]
    return _Routed(["run", *options], harness, rest)


def _context(ns: argparse.Namespace) -> Any:
    from aishell.project.context import Context  # noqa: PLC0415 - keeps --version/--help fast

    return Context.create(
        ns.project, verbose=ns.verbose, quiet=ns.quiet, no_color=ns.no_color,
        json=getattr(ns, "json", False),
    )


def _run_options_of(ns: argparse.Namespace, routed: _Routed) -> Any:
    from aishell.run.launch import RunOptions  # noqa: PLC0415

    return RunOptions(
        harness=routed.harness, args=tuple(routed.harness_args), name=ns.name,
        detach=ns.detach, env=tuple(ns.env), volumes=tuple(ns.volume),
        ports=tuple(ns.publish), unsafe=ns.unsafe, locked=ns.locked, frozen=ns.frozen,
        offline=ns.offline, substituters=tuple(ns.substituter), no_substitute=ns.no_substitute,
    )


def _launch(ctx: Any, opts: Any) -> int:
    from aishell.cli.run import print_started  # noqa: PLC0415
    from aishell.run import launch as run  # noqa: PLC0415

    result = run.run(ctx, opts)
    if isinstance(result, int):
        return result
    print_started(ctx, result)
    return 0


def _dispatch_sandboxes(ns: argparse.Namespace, ctx: Any, command: str) -> int:
    if command == "attach":
        from aishell.run import sandboxes  # noqa: PLC0415

        cmd = list(ns.cmd)
        if cmd[:1] == ["--"]:
            cmd = cmd[1:]
        return sandboxes.attach(ctx, ns.sandbox, cmd)
    if command == "ps":
        from aishell.cli.run import print_sandboxes  # noqa: PLC0415
        from aishell.run import sandboxes  # noqa: PLC0415

        print_sandboxes(ctx, sandboxes.ps(ctx, every_project=ns.all), every_project=ns.all)
        return 0
    if command == "stop":
        from aishell.run import sandboxes  # noqa: PLC0415

        container = sandboxes.stop(ctx, ns.sandbox, timeout=ns.time)
        if not ctx.quiet:
            print(f"stopped {ns.sandbox} ({container})")
        return 0
    if command == "migrate":
        from aishell.cli.run import print_migrated  # noqa: PLC0415
        from aishell.project import migrate  # noqa: PLC0415

        print_migrated(ctx, migrate.migrate(ctx, dry_run=ns.dry_run, force=ns.force))
        return 0
    raise AssertionError(command)  # pragma: no cover


def _dispatch(ns: argparse.Namespace, routed: _Routed) -> int:  # noqa: PLR0911
    command = ns.command or "shell"
    if ns.verbose:
        from aishell import process  # noqa: PLC0415

        process.VERBOSE = True
    ctx = _context(ns)
    if command == "shell":
        if ns.command is None:  # bare `aishell`
            from aishell.run.launch import RunOptions  # noqa: PLC0415

            return _launch(ctx, RunOptions())
        return _launch(ctx, _run_options_of(ns, _Routed([])))
    if command == "run":
        return _launch(ctx, _run_options_of(ns, routed))
    if command == "exec":
        from aishell.run import launch as run  # noqa: PLC0415

        cmd = list(ns.cmd)
        if cmd[:1] == ["--"]:
            cmd = cmd[1:]
        return run.exec_command(ctx, cmd)
    if command in ("attach", "ps", "stop", "migrate"):
        return _dispatch_sandboxes(ns, ctx, command)
    if command == "gitleaks":
        from aishell.run import gitleaks  # noqa: PLC0415

        extra = list(ns.gitleaks_args)
        if extra[:1] == ["--"]:
            extra = extra[1:]
        result = gitleaks.scan(ctx, extra)
        gitleaks.print_result(ctx, result)
        return result.exit_code
    if command == "check":
        from aishell.cli.doctor import print_findings  # noqa: PLC0415
        from aishell.run import doctor  # noqa: PLC0415

        findings = doctor.check(ctx)
        print_findings(ctx, findings)
        return 1 if any(f.status == "fail" for f in findings) else 0
    if command == "info":
        from aishell.cli.doctor import print_info  # noqa: PLC0415
        from aishell.run import doctor  # noqa: PLC0415

        if ns.foundation:
            from aishell.store.images import foundation_for  # noqa: PLC0415

            print(foundation_for(ctx).dockerfile(), end="")
            return 0
        from dataclasses import asdict  # noqa: PLC0415

        print_info(ctx, asdict(doctor.info(ctx)))
        return 0
    if command == "sync":
        from aishell.cli.sync import run_sync  # noqa: PLC0415

        return run_sync(ctx, ns)
    if command == "build":
        from aishell.store import images as launch  # noqa: PLC0415

        tag = launch.ensure_image(ctx, force=ns.force)
        if not ctx.quiet:
            print(tag)
        return 0
    from aishell.cli import lock as cli_lock  # noqa: PLC0415

    if command in cli_lock.COMMANDS:
        return cli_lock.dispatch(ctx, ns)
    if command == "verify":
        return _verify(ctx, ns)
    raise AssertionError(command)  # pragma: no cover - argparse restricts choices


def _verify(ctx: Any, ns: argparse.Namespace) -> int:
    from aishell import render  # noqa: PLC0415
    from aishell.cli.verify import print_report  # noqa: PLC0415
    from aishell.errors import AishellError, UsageError  # noqa: PLC0415
    from aishell.store import verify  # noqa: PLC0415

    if ns.all and ns.env:
        raise UsageError("pass env ids or --all, not both")
    wanted = list(ns.env)
    if not ns.all and not wanted:  # this project's env on this machine
        from aishell.lock.freshness import read_lock  # noqa: PLC0415
        from aishell.store.sync import engine_platform  # noqa: PLC0415

        lock = read_lock(ctx.config.lock_path)
        if lock is None:
            raise AishellError(f"{ctx.config.lock_path} does not exist: no env to verify",
                               hint="`aishell verify --all` checks every env volume")
        platform = engine_platform(ctx)
        if platform not in lock.env_ids():
            raise AishellError(f"aishell.lock has no env for {platform}")
        wanted = [lock.env_ids()[platform]]
    on_env = None if ctx.quiet or ctx.json else (lambda v: render.err(f"verifying {v}…"))
    report = verify.verify(ctx.engine, ctx.paths, wanted=None if ns.all else wanted,
                           on_wait=render.err, on_env=on_env)
    print_report(ctx, report)
    return 0 if report.ok else 1


STORE_COMMANDS = ("gc", "store", "pin", "unpin", "rollback")


def _dispatch_store(ns: argparse.Namespace) -> int:
    """The store commands (gc, store ls, pin, unpin, rollback)."""
    command = ns.command
    ctx = _context(ns)
    from aishell.cli import store as render_store  # noqa: PLC0415
    from aishell.store import index  # noqa: PLC0415
    from aishell.store import listing as store  # noqa: PLC0415

    if command == "gc":
        from aishell import render  # noqa: PLC0415
        from aishell.store.gc import collect_garbage  # noqa: PLC0415
        from aishell.units import parse_duration, parse_size  # noqa: PLC0415

        result = collect_garbage(
            ctx.paths, ctx.engine, dry_run=ns.dry_run,
            older_than=parse_duration(ns.older_than) if ns.older_than else None,
            keep_generations=ns.keep_generations,
            max_freed=parse_size(ns.max_freed) if ns.max_freed else None,
            on_wait=None if ctx.quiet else render.err,
        )
        render_store.print_gc(result, as_json=ctx.json, quiet=ctx.quiet)
    elif command == "store" and ns.store_command in ("push", "pull"):
        from aishell.cli import substitute as cli_substitute  # noqa: PLC0415

        return cli_substitute.dispatch(ctx, ns)
    elif command == "store":
        render_store.print_listing(store.list_store(ctx.paths, ctx.engine), as_json=ctx.json)
    elif command == "pin" and ns.list:
        render_store.print_pins(index.pins(ctx.paths), as_json=ctx.json)
    elif command == "pin":
        render_store.print_pin(store.pin_project(ctx.paths, ctx.project, ns.name),
                               as_json=ctx.json, quiet=ctx.quiet)
    elif command == "unpin":
        render_store.print_unpin(index.unpin(ctx.paths, ns.name), quiet=ctx.quiet)
    elif command == "rollback" and ns.list:
        gens, current = index.generations(ctx.paths, ctx.project)
        render_store.print_generations(gens, current, as_json=ctx.json)
    elif command == "rollback":
        restored = store.rollback(ctx.paths, ctx.engine, ctx.project, to=ns.to,
                                  dry_run=ns.dry_run, force=ns.force)
        render_store.print_rollback(restored, as_json=ctx.json, quiet=ctx.quiet)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (the console script passes it to sys.exit)."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    verbose = any(a in ("-v", "--verbose") for a in _split(args)[0])
    from aishell.errors import AishellError  # noqa: PLC0415

    try:
        routed = route(args, command_names(parser))
    except AishellError as exc:  # an unknown command or harness: the one handler prints it
        from aishell.cli import crash as errors_report  # noqa: PLC0415

        error = exc

        def fail() -> int:
            raise error

        return errors_report.guard(fail, verbose=verbose)
    try:
        ns = parser.parse_args(routed.parse)
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return int(exc.code or 0)
    from aishell.cli import crash as errors_report  # noqa: PLC0415

    if ns.command in STORE_COMMANDS:
        return errors_report.guard(lambda: _dispatch_store(ns), verbose=verbose)
    return errors_report.guard(lambda: _dispatch(ns, routed), verbose=verbose)


def entry() -> None:
    sys.exit(main())
