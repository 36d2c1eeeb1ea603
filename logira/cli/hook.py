"""`logira hook`: listed in --help; the command itself is dispatched early (logira/client/hook.py)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "hook",
        help="Forward an agent hook message (JSON on stdin) to logirad; used by agent hook configs.",
        description="Reads the agent's hook JSON on stdin and sends it to logirad, which records it in the "
        "run the sending process belongs to. Always exits 0 and never prints on stdout. Installed by "
        "`logira agent hooks install`.",
    )
    p.add_argument("--agent", default="", help="claude | codex | gemini")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from logira.client.hook import main

    return main(["--agent", args.agent] if args.agent else [])
