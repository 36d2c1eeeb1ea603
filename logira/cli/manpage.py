"""Man pages generated from the real argument parsers: `python -m logira.cli.manpage OUTDIR`.

Writes logira.1 (the command list), logira-<command>.1 (one per sub-command) and logirad.8, in
plain roff (man(7) macros). `make install` runs it from the installed package, so the pages always
describe the installed version's flags; nothing is maintained by hand.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from logira import __version__

SECTION_TITLE = {"1": "logira manual", "8": "logira manual"}


def roff(text: str) -> str:
    """Escape text for roff: backslashes, hyphens, and lines starting with a control character."""
    out = []
    for line in text.replace("\\", "\\e").replace("-", "\\-").splitlines():
        out.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(out)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help_of(parser: argparse.ArgumentParser, name: str) -> str:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.dest == name:
                    return choice.help or ""
    return ""


def _options(parser: argparse.ArgumentParser) -> list[str]:
    lines: list[str] = []
    for action in parser._actions:
        if isinstance(action, (argparse._SubParsersAction, argparse._HelpAction)):
            continue
        if action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            takes = action.nargs != 0
            metavar = action.metavar or (action.dest.upper() if takes else "")
            if action.choices and not action.metavar:
                metavar = "{" + ",".join(str(c) for c in action.choices) + "}"
            names = ", ".join(f"\\fB{roff(o)}\\fR" for o in action.option_strings)
            head = names + (f" \\fI{roff(str(metavar))}\\fR" if takes and metavar else "")
        else:
            head = f"\\fI{roff(str(action.metavar or action.dest))}\\fR"
        lines += [".TP", head, roff(action.help or "")]
    return lines


def page(parser: argparse.ArgumentParser, name: str, section: str, summary: str, see_also: list[str]) -> str:
    usage = parser.format_usage().removeprefix("usage: ").strip()
    lines = [
        f'.TH "{name.upper()}" "{section}" "" "logira {__version__}" "{SECTION_TITLE[section]}"',
        ".SH NAME",
        f"{roff(name)} \\- {roff(summary)}",
        ".SH SYNOPSIS",
        ".nf",
        roff(usage),
        ".fi",
    ]
    if parser.description:
        lines += [".SH DESCRIPTION", roff(parser.description)]
    subs = _subparsers(parser)
    if subs:
        lines.append(".SH COMMANDS")
        for sub in subs:
            lines += [".TP", f"\\fB{roff(sub)}\\fR", roff(_help_of(parser, sub))]
    opts = _options(parser)
    if opts:
        lines += [".SH OPTIONS", *opts]
    if parser.epilog:
        lines += [".SH NOTES", ".nf", roff(parser.epilog.strip()), ".fi"]
    if see_also:
        lines += [".SH SEE ALSO", ", ".join(f"\\fB{roff(n)}\\fR({s})" for n, s in see_also)]
    return "\n".join(lines) + "\n"


def render_all() -> dict[str, str]:
    """{file name: page} for every page."""
    from logira.cli.main import build_parser
    from logira.daemon.config import parser as daemon_parser

    main = build_parser()
    subs = _subparsers(main)
    pages: dict[str, str] = {}
    sub_refs = [(f"logira-{n}", "1") for n in subs]
    pages["logira.1"] = page(
        main, "logira", "1", "record what an AI agent really did, from the kernel", [*sub_refs, ("logirad", "8")]
    )
    for n, sp in subs.items():
        sp.prog = f"logira {n}"
        pages[f"logira-{n}.1"] = page(sp, f"logira-{n}", "1", _help_of(main, n), [("logira", "1")])
    dp = daemon_parser()
    pages["logirad.8"] = page(dp, "logirad", "8", "the logira root daemon", [("logira", "1")])
    return pages


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m logira.cli.manpage OUTDIR", file=sys.stderr)
        return 2
    out = Path(args[0])
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (out / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
