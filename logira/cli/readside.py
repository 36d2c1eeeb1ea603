"""Shared plumbing of the read-side commands (runs, view, query, explain, tail, rm, prune).

Common flags (`--json`, `--color`, `--no-color`, `--ts`), the run selector (positional
`last|<run-id>` or `--run`, accepted anywhere on the line), opening a run, and a buffered
output with the palette and time formatter. Read commands never write to a run and never
need the daemon.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

import msgspec

from logira.render.color import Palette, color_enabled
from logira.render.timefmt import TimeFormatter, check_ts_mode


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the hand-written examples in epilogs as they are."""


def add_parser(subparsers, name: str, help_: str, description: str, examples: str) -> argparse.ArgumentParser:
    """A sub-parser with the examples shown by `--help`."""
    return subparsers.add_parser(
        name, help=help_, description=description, epilog="examples:\n" + examples,
        formatter_class=HelpFormatter,
    )  # fmt: skip


def add_selector(p: argparse.ArgumentParser) -> None:
    """Positional `last|<run-id>` (default last), also accepted as `--run`."""
    p.add_argument(
        "run", nargs="?", default=None, metavar="last|RUN_ID", help="run to read (default: last started)"
    )
    p.add_argument("--run", dest="run_opt", metavar="RUN", help="same as the positional selector")


def add_output(
    p: argparse.ArgumentParser, json_help: str = "machine-readable output", ts: bool = True
) -> None:
    """--json, --color/--no-color and (optionally) --ts."""
    p.add_argument("--json", action="store_true", help=json_help)
    p.add_argument(
        "--color",
        default="auto",
        metavar="auto|always|never",
        help="colour (default auto: TTY only; NO_COLOR/FORCE_COLOR respected)",
    )
    p.add_argument("--no-color", action="store_true", help="same as --color never")
    if ts:
        p.add_argument(
            "--ts",
            default="rel",
            metavar="rel|abs|both",
            help="times relative to run start (default), absolute UTC, or both",
        )


def selector(args: argparse.Namespace) -> str:
    """The run selector from the positional or --run (default `last`)."""
    return args.run_opt or args.run or "last"


def resolve(args: argparse.Namespace) -> Path:
    """The run directory named by the selector (one-line CliError when there is none)."""
    from logira.read import reader

    return reader.resolve_run(reader.resolve_home(), selector(args))


class Out:
    """Buffered stdout with the palette and time formatter chosen by the flags."""

    def __init__(self, args: argparse.Namespace, start_ts: int = 0, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        mode = "never" if getattr(args, "no_color", False) else getattr(args, "color", "auto")
        self.palette = Palette(color_enabled(mode, self.stream))
        self.tf = TimeFormatter(start_ts, check_ts_mode(getattr(args, "ts", "rel") or "rel"))
        self._buf: list[str] = []
        self._size = 0

    def set_start(self, start_ts: int) -> None:
        """Times are relative to this run start from now on."""
        self.tf = TimeFormatter(start_ts, self.tf.mode)

    def line(self, s: str = "") -> None:
        self._buf.append(s)
        self._size += len(s)
        if self._size > 1 << 16:
            self.flush()

    def lines(self, ls: list[str]) -> None:
        for s in ls:
            self.line(s)

    def flush(self) -> None:
        if self._buf:
            self.stream.write("\n".join(self._buf) + "\n")
            self._buf.clear()
            self._size = 0
        self.stream.flush()


def print_json(obj: object) -> None:
    """Indented JSON document on stdout."""
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(obj), indent=2).decode() + "\n")
