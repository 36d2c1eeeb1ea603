"""`logira export`: ship one stored run as JSONL or OTLP logs (a file, stdout, or a collector)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from logira.cli import readside
from logira.cli.errors import CliError

FORMATS = ("jsonl", "otlp-json")
BATCH = 1000  # records per ExportLogsServiceRequest

EXAMPLES = """\
  logira export last --format jsonl -o run.jsonl            # the stored lines, hash chain included
  logira export --format otlp-json -o run.otlp.jsonl        # one ExportLogsServiceRequest per line
  logira export --format otlp-json --endpoint http://127.0.0.1:4318   # POST to a collector's /v1/logs
"""


def register(subparsers) -> None:
    p = readside.add_parser(
        subparsers, "export", "Export a stored run (jsonl, otlp-json) to a file or a collector.",
        "jsonl: the run's events.jsonl lines exactly as stored (with their hash chain). otlp-json: OTLP "
        "logs in the JSON encoding, one ExportLogsServiceRequest per line (the OpenTelemetry file-exporter "
        "layout), or POSTed to a collector with --endpoint (docs/export.md).", EXAMPLES,
    )  # fmt: skip
    readside.add_selector(p)
    p.add_argument("--format", default="jsonl", metavar="|".join(FORMATS), help="output format (default jsonl)")
    p.add_argument("-o", "--output", default="-", metavar="FILE", help="write to FILE atomically (default stdout)")
    p.add_argument("--endpoint", metavar="URL", help="otlp-json: POST to this OTLP/HTTP collector instead of a file")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S", help="--endpoint: seconds per request")
    p.add_argument("--header", action="append", default=[], metavar="K=V", help="--endpoint: extra HTTP header")
    p.set_defaults(func=run)


def _jsonl_chunks(run_dir: Path) -> Iterator[bytes]:
    """The stored lines, whole lines only (a running run's half-written last line is left out)."""
    with open(run_dir / "events.jsonl", "rb") as f:
        carry = b""
        while chunk := f.read(1 << 20):
            data = carry + chunk
            cut = data.rfind(b"\n") + 1
            carry = data[cut:]
            if cut:
                yield data[:cut]


def _requests(run_dir: Path, host: str) -> Iterator[tuple[bytes, int]]:
    """(request body, record count) per BATCH records of the run."""
    import time

    from logira import __version__
    from logira.format import otlp as fmt
    from logira.read.reader import iter_records

    res = fmt.resource(host, __version__)
    batch: list[bytes] = []
    now = time.time_ns()
    for rec in iter_records(run_dir):
        try:
            data = rec.data()
        except Exception:  # an undecodable payload cannot be shipped as OTLP; `logira verify` reports it
            continue
        batch.append(fmt.log_record(rec, data, bytes(rec.data_json), now))
        if len(batch) >= BATCH:
            yield fmt.export_request(res, __version__, batch), len(batch)
            batch = []
    if batch:
        yield fmt.export_request(res, __version__, batch), len(batch)


def _post_all(args: argparse.Namespace, run_dir: Path, host: str) -> int:
    from logira.sinks.otlp import ExportError, OtlpPoster

    headers = {}
    for h in args.header:
        k, sep, v = h.partition("=")
        if not sep or not k.strip():
            raise CliError(f"invalid --header {h!r} (expected NAME=VALUE)", exit_code=2)
        headers[k.strip()] = v
    try:
        poster = OtlpPoster(args.endpoint, args.timeout, headers)
    except ValueError as exc:
        raise CliError(f"{exc} (check --endpoint)", exit_code=2) from None
    sent = rejected = 0
    try:
        for body, n in _requests(run_dir, host):
            try:
                rejected += poster.post(body)
            except ExportError as exc:
                hint = "is the collector running and reachable? (check --endpoint"
                hint += ", or raise --timeout)" if "timed out" in str(exc) else ")"
                raise CliError(f"{exc} after {sent} records were delivered: {hint}; re-running sends the run "
                               "again from the start") from None  # fmt: skip
            sent += n
    finally:
        poster.close()
    print(f"exported {sent - rejected} records of run {run_dir.name} to {args.endpoint}"
          + (f" ({rejected} rejected by the collector)" if rejected else ""), file=sys.stderr)  # fmt: skip
    return 1 if rejected else 0


def run(args: argparse.Namespace) -> int:
    from logira.cli.output import check_target, write_output
    from logira.cli.report import check_format
    from logira.read import reader

    fmt = check_format(args.format, FORMATS)
    if args.endpoint and fmt != "otlp-json":
        raise CliError("--endpoint needs --format otlp-json", exit_code=2)
    if args.endpoint and args.output not in ("", "-"):
        raise CliError("use either --endpoint or -o, not both", exit_code=2)
    if args.timeout <= 0:
        raise CliError(f"invalid --timeout {args.timeout} (expected seconds > 0)", exit_code=2)
    check_target(args.output)
    run_dir = readside.resolve(args)
    meta = reader.read_meta(run_dir)
    if not (run_dir / "events.jsonl").is_file():
        raise CliError(f"run {run_dir.name} has no events.jsonl (nothing to export)")
    if fmt == "jsonl":
        write_output(args.output, _jsonl_chunks(run_dir))
        return 0
    if args.endpoint:
        return _post_all(args, run_dir, meta.host)
    write_output(args.output, (body + b"\n" for body, _ in _requests(run_dir, meta.host)))
    return 0
