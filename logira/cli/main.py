"""The `logira` command: argument parsing and dispatch.

Each command lives in its own module exposing `register(subparsers)`, which adds a
sub-parser and sets `func=<callable(args) -> int>`. Flags may appear anywhere on the
line (argparse intermixes optionals and positionals).
"""

from __future__ import annotations

import sys

from logira import __version__

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing alone costs ~10 ms of startup
if TYPE_CHECKING:  # argparse is imported when a parser is built: `--version` and `hook` need none
    import argparse

# Order = order in --help.
COMMAND_MODULES = (
    "run",
    "status",
    "doctor",
    "runs",
    "view",
    "query",
    "explain",
    "report",
    "diff",
    "check",
    "export",
    "tail",
    "verify",
    "rules",
    "retention",
    "completion",
    "agent",
    "calls",
    "hook",
)


# Commands registered by a module with another name.
MODULE_OF = {"rm": "retention", "prune": "retention"}


def _only_module(argv: list[str]) -> str | None:
    """The one module the command line needs (startup time), or None to load them all."""
    if not argv or argv[0].startswith("-"):
        return None
    name = MODULE_OF.get(argv[0], argv[0])
    return name if name in COMMAND_MODULES else None


def _parser_class() -> type[argparse.ArgumentParser]:
    import argparse
    from typing import NoReturn

    class _Parser(argparse.ArgumentParser):
        """argparse, but a bad command line is one line naming the help to read (not usage + error)."""

        def error(self, message: str) -> NoReturn:
            self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")

    return _Parser


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = _parser_class()(
        prog="logira",
        description="Runtime security for AI agents: record what an agent really did, from the kernel.",
        epilog="Environment: LOGIRA_HOME (runs, default ~/.logira), LOGIRA_SOCK (daemon socket, "
        "default /run/logira.sock), NO_COLOR / FORCE_COLOR.",
    )
    parser.add_argument("--version", action="version", version=f"logira {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    only = _only_module(argv) if argv is not None else None
    for name in (only,) if only else COMMAND_MODULES:
        import importlib

        try:
            mod = importlib.import_module(f"logira.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"logira.cli.{name}":
                continue  # command not built yet
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["hook"]:
        # runs on every tool call of an agent: skip argparse and the command modules (startup time)
        from logira.client.hook import main as hook_main

        return hook_main(argv[1:])
    if argv == ["--version"]:  # the one answer that needs no parser (startup time)
        print(f"logira {__version__}")
        return 0
    from logira.errors import LogiraError

    parser = build_parser(argv)
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args) or 0)
    except LogiraError as exc:
        # messages can quote run files the agent could have edited: never raw to the terminal
        from logira.render.escape import esc

        print(f"error: {esc(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
