"""`logira rm` and `logira prune`: delete stored runs (never a running one).

Deletion goes through a directory fd of `$LOGIRA_HOME/runs` with `shutil.rmtree(dir_fd=…)`,
which never follows symlinks, so a run directory swapped for a symlink cannot redirect it.
"""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import sys
import time

from logira.cli import readside
from logira.cli.errors import CliError
from logira.render.escape import esc
from logira.render.timefmt import fmt_date, parse_duration


def register(subparsers) -> None:
    p = readside.add_parser(
        subparsers, "rm", "Delete runs.",
        "Delete the named runs from $LOGIRA_HOME/runs. A running run is refused (use --force only "
        "when logirad died and left it marked running).",
        "  logira rm 20260102-150405-claude\n  logira rm 20260102-150405-claude 20260102-151000-codex\n",
    )  # fmt: skip
    p.add_argument("run_ids", nargs="+", metavar="RUN_ID", help="full run id(s), as shown by `logira runs`")
    p.add_argument("--force", action="store_true", help="also delete a run whose meta still says running")
    p.set_defaults(func=run_rm)
    p = readside.add_parser(
        subparsers, "prune", "Delete runs older than a given age.",
        "Delete every finished run that ended (or, if it never ended, started) longer ago than --older-than.",
        "  logira prune --older-than 30d --dry-run\n  logira prune --older-than 12h\n",
    )  # fmt: skip
    p.add_argument("--older-than", required=True, metavar="AGE", help="e.g. 30d, 12h, 1w")
    p.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    p.set_defaults(func=run_prune)


def _runs_fd(home) -> int:
    try:
        return os.open(home / "runs", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise CliError(f"no runs yet under {esc(str(home))}/runs") from None
    except OSError as exc:
        raise CliError(
            f"cannot open {esc(str(home))}/runs: {exc.strerror} (it must be a real directory)"
        ) from None


def _remove(runs_fd: int, run_id: str) -> None:
    try:
        st = os.stat(run_id, dir_fd=runs_fd, follow_symlinks=False)
    except FileNotFoundError:
        raise CliError(f"run {esc(run_id)} not found") from None
    import stat as st_mod

    if not st_mod.S_ISDIR(st.st_mode):
        raise CliError(f"{esc(run_id)} under runs/ is not a directory (symlink?); remove it by hand")
    try:
        shutil.rmtree(run_id, dir_fd=runs_fd)
    except OSError as exc:
        hint = (
            " (the run directory is still owned by root: is the run active?)"
            if exc.errno in (errno.EACCES, errno.EPERM)
            else ""
        )
        raise CliError(f"cannot delete run {esc(run_id)}: {exc.strerror}{hint}") from None


def run_rm(args: argparse.Namespace) -> int:
    from logira.read import reader
    from logira.storage.runids import validate_run_id

    home = reader.resolve_home()
    for rid in args.run_ids:
        try:
            validate_run_id(rid)
        except ValueError as exc:
            raise CliError(str(exc), exit_code=2) from None
    fd = _runs_fd(home)
    try:
        for rid in args.run_ids:
            run_dir = reader.resolve_run(home, rid)
            try:
                meta = reader.read_meta(run_dir)
            except Exception:  # an unreadable meta must not block deleting the run
                meta = None
            if meta is not None and meta.status == "running" and not args.force:
                raise CliError(
                    f"run {esc(rid)} is still running; wait for it to end (or --force if logirad died)"
                )
            _remove(fd, rid)
            print(f"removed {esc(rid)}")
    finally:
        os.close(fd)
    return 0


def run_prune(args: argparse.Namespace) -> int:
    from logira.read import reader

    age = parse_duration(args.older_than, "--older-than")
    cutoff = time.time_ns() - age
    home = reader.resolve_home()
    victims = []
    for info in reader.list_runs(home):
        m = info.meta
        if m is None or m.status == "running":
            continue
        when = m.end_ts or m.start_ts
        if when and when < cutoff:
            victims.append((info.run_id, when))
    if not victims:
        print(f"nothing older than {esc(args.older_than)}")
        return 0
    fd = _runs_fd(home)
    try:
        for rid, when in victims:
            if args.dry_run:
                print(f"would remove {esc(rid)}  (ended {fmt_date(when)})")
            else:
                _remove(fd, rid)
                print(f"removed {esc(rid)}  (ended {fmt_date(when)})")
    finally:
        os.close(fd)
    if args.dry_run:
        print(f"{len(victims)} run(s) would be removed; run without --dry-run to delete", file=sys.stderr)
    return 0
