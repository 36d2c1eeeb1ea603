"""`logira run [flags] -- <command...>`: run an agent as a recorded run."""

from __future__ import annotations

import argparse

from logira.client.run import RunOptions, run


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run a command as a recorded run (needs logirad)",
        description="Run <command> as a recorded run. logirad (root) records every process, file change "
        "and network destination of the command and its children into $LOGIRA_HOME/runs/<run-id>/. "
        "The command is never run if logirad is not running or refuses. Exit status = the command's "
        "(128+N when killed by signal N).",
        epilog="Everything after `--` is the command, verbatim. Ctrl-C goes to the command; a second "
        "Ctrl-C kills it. Example: logira run --tool claude -- claude --dangerously-skip-permissions",
    )
    p.add_argument(
        "--tool", default="", help="name in the run id and meta (default: basename of the command)"
    )
    p.add_argument(
        "--rules", default="", metavar="FILE", help="extra rules YAML for this run (validated first)"
    )
    for name in ("exec", "file", "net"):
        p.add_argument(
            f"--{name}",
            action=argparse.BooleanOptionalAction,
            default=True,
            help=f"record {name} events (default: yes)",
        )
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- <command> [args...]")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    argv = list(args.command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    result = run(
        RunOptions(
            argv=argv, tool=args.tool, rules_path=args.rules, exec=args.exec, file=args.file, net=args.net
        )
    )
    return result.exit_status
