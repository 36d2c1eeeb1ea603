"""`logira verify [last|<run-id>] [--all]`: was a stored run edited, truncated or deleted?

The daemon seals every finished run into a root-owned file (`$LOGIRA_STATE_DIR/seals/<uid>/`)
holding the record count and the final hash of the JSONL hash chain. The run directory itself
belongs to the user (and so to the agent that ran as the user); the seal does not. Verifying
recomputes the chain and compares it with the seal, so an edit, a cut or a deleted run shows.
Exit 0 when everything checked is intact, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from logira.cli.errors import CliError
from logira.read.verify import VerifyReport
from logira.render.escape import esc


def _state_dir() -> Path:
    from logira.storage.statedir import default_state_dir

    return default_state_dir()


def _owner_uid(run_dir: Path) -> int:
    """Seals are filed under the run's uid: the owner of the (handed-over) run directory."""
    try:
        st = run_dir.stat()
    except OSError:
        return os.getuid()
    return st.st_uid if st.st_uid != 0 else os.getuid()


def _is_default_home(home: Path) -> bool:
    """Seals written before they recorded their directory are attributed to the default home."""
    from logira.storage.home import HomeError, default_home

    try:
        return os.path.realpath(home) == os.path.realpath(default_home(os.getuid()))
    except HomeError:
        return False


def _print_report(rep: VerifyReport) -> bool:
    if rep.intact:
        print(
            f"{esc(rep.run_id)}: intact ({rep.records} records, {'sealed' if rep.sealed else 'not sealed'})"
        )
    else:
        print(f"{esc(rep.run_id)}: NOT INTACT")
        for p in rep.problems:
            print(f"  - {esc(p)}")
    for n in rep.notes:
        print(f"  note: {esc(n)}")
    return rep.intact


def verify_one(home: Path, selector: str) -> bool:
    """Verify one run by selector; a deleted run whose seal remains is reported as deleted."""
    from logira.read.reader import resolve_run
    from logira.read.verify import seals_of_home, verify_run
    from logira.storage.seal import read_seal

    state = _state_dir()
    try:
        run_dir = resolve_run(home, selector)
    except CliError:
        seal = read_seal(state, os.getuid(), selector) if selector != "last" else None
        if seal is not None and seals_of_home(home, [seal], _is_default_home(home)):
            print(f"{esc(selector)}: NOT INTACT")
            print(f"  - run deleted (seal exists, directory {esc(str(home / 'runs' / selector))} is gone)")
            return False
        raise
    seal = read_seal(state, _owner_uid(run_dir), run_dir.name)
    return _print_report(verify_run(run_dir, seal))


def verify_all(home: Path) -> bool:
    """Verify every run under home, then report sealed runs whose directories are gone."""
    from logira.read.reader import list_runs
    from logira.read.verify import verify_missing_runs, verify_run
    from logira.storage.seal import list_seals, read_seal

    state = _state_dir()
    ok = True
    runs = list_runs(home)
    for info in runs:
        seal = read_seal(state, _owner_uid(info.dir), info.run_id)
        ok = _print_report(verify_run(info.dir, seal)) and ok
    # seals are per uid: only the runs created under this home can be missing from it
    problems = verify_missing_runs(home, list_seals(state, os.getuid()), legacy=_is_default_home(home))
    for p in problems:
        print(f"NOT INTACT: {esc(p)}")
        ok = False
    if not runs and not problems:
        print(f"no runs under {esc(str(home / 'runs'))}")
    return ok


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="check that stored runs were not edited, truncated or deleted",
        description="Recompute each run's hash chain and compare it with the daemon's root-owned seal. "
        "Prints 'intact' or exactly what changed. Exit 0 when intact, 1 otherwise.",
    )
    p.add_argument("run", nargs="?", default="last", help="last (default) or a run id")
    p.add_argument(
        "--all", action="store_true", help="verify every run, and find sealed runs that were deleted"
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from logira.read.reader import resolve_home

    home = resolve_home()
    ok = verify_all(home) if args.all else verify_one(home, args.run)
    return 0 if ok else 1
