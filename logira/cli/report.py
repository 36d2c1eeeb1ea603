"""`logira report`: one run as a self-contained HTML page, Markdown summary, SARIF log or JSON model."""

from __future__ import annotations

import argparse
import os

from logira.cli import readside
from logira.cli.errors import CliError

FORMATS = ("html", "md", "sarif", "json")

EXAMPLES = """\
  logira report --format html -o report.html          # last run, one offline file
  logira report last --format md >> "$GITHUB_STEP_SUMMARY"
  logira report --format sarif -o logira.sarif         # for github/codeql-action/upload-sarif
  logira report 20260102-150405-claude --format json | jq .detections.by_severity
"""


def register(subparsers) -> None:
    p = readside.add_parser(
        subparsers, "report", "Write a shareable report of a run (html, md, sarif, json).",
        "One report model of a run, aggregated in its index (docs/report.md): header and completeness, "
        "timeline, tool calls, process tree, changed files, egress, detections with evidence, and what "
        "is new compared with earlier runs of the same workspace.", EXAMPLES,
    )  # fmt: skip
    readside.add_selector(p)
    p.add_argument("--format", default="html", metavar="|".join(FORMATS), help="output format (default html)")
    p.add_argument(
        "-o", "--output", default="-", metavar="FILE", help="write to FILE atomically (default stdout)"
    )
    p.add_argument("--repo", metavar="DIR",
                   help="sarif: the repository checkout results are anchored in (default: the run's workspace "
                        "when it exists here, else the current directory)")  # fmt: skip
    p.add_argument("--anchor", metavar="FILE",
                   help="sarif: repository file carrying results about things outside the repository "
                        "(default AGENTS.md, CLAUDE.md, the workflow file, README.md)")  # fmt: skip
    p.add_argument("--no-diff", action="store_true", help="leave out the 'new in this run' comparison")
    p.set_defaults(func=run)


def check_format(fmt: str, allowed: tuple[str, ...] = FORMATS) -> str:
    f = fmt.strip().lower()
    if f not in allowed:
        raise CliError(f"unknown --format {fmt!r} (expected {' | '.join(allowed)})", exit_code=2)
    return f


def build(args: argparse.Namespace):
    """(report, run_dir, meta) of the selected run."""
    from logira.read import reader
    from logira.read.query import RunSource
    from logira.report.build import build_report
    from logira.report.toolcalls import attribution_of, tool_calls_of

    run_dir = readside.resolve(args)
    meta = reader.read_meta(run_dir)
    new = None
    if not getattr(args, "no_diff", False):
        from logira.report.diff import new_in_run_of

        new = new_in_run_of(reader.resolve_home(), meta)
    with RunSource(run_dir, running=meta.status == "running") as src:
        report = build_report(src.db, meta, tool_calls=tool_calls_of(src.db), attribution=attribution_of(src.db),
                              new_in_run=new)  # fmt: skip
    return report, run_dir, meta


def _repo_for(args: argparse.Namespace, report) -> str:
    from logira.read.workspace import git_root

    if args.repo:
        repo = os.path.abspath(args.repo)
        if not os.path.isdir(repo):
            raise CliError(
                f"--repo {args.repo} is not a directory (name the repository checkout)", exit_code=2
            )
        return repo
    ws = report.run.workspace
    if ws and ws != "/" and os.path.isdir(ws):
        return ws
    cwd = os.getcwd()
    return git_root(cwd) or cwd


def run(args: argparse.Namespace) -> int:
    import msgspec

    from logira.cli.output import check_target, write_output

    fmt = check_format(args.format)
    check_target(args.output)  # before the work: an unwritable path fails in one line, nothing written
    report, _, _ = build(args)
    if fmt == "json":
        from logira.report.build import encode_json

        data = encode_json(report)
    elif fmt == "html":
        from logira.report.html import render_html

        data = render_html(report).encode("utf-8", "backslashreplace")
    elif fmt == "md":
        from logira.report.md import render_md

        data = render_md(report).encode("utf-8", "backslashreplace")
    else:
        from logira.report.sarif import AnchorError, render_sarif

        try:
            doc = render_sarif(report, _repo_for(args, report), args.anchor or "")
        except AnchorError as exc:
            raise CliError(str(exc)) from None
        data = msgspec.json.format(msgspec.json.encode(doc), indent=2) + b"\n"
    write_output(args.output, [data])
    return 0
