"""`logira tail`: print a run's stored records, then follow it live until it ends.

Protocol (docs/architecture.md): `follow{run_id}` → `following{run_id, next_seq}`; every
seq < next_seq is already in events.jsonl, so those come from the file; everything after
arrives as `records{lines}` until `run_ended`. Seqs are printed once, in order (a record
seen in both is skipped). Without a daemon, or when the run is not active, the stored
records are printed and the command exits 0. `--next` ignores every run that exists when tail
starts and waits (polling `status`) for the next one to start, then follows it from its first
record.
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec

from logira.cli import readside
from logira.cli.errors import CliError
from logira.cli.query import add_filters, build_filter, validate_flags
from logira.model.record import StoredRecord
from logira.read.query import CompiledFilter, row_from_record
from logira.render.color import TYPE_CODES
from logira.render.escape import esc, file_summary

EXAMPLES = """\
  logira tail                           # your newest active run (or the last stored one)
  logira tail --run 20260102-150405-claude --type file,net
  logira tail --severity '>=medium'     # detections only
  logira tail --json | jq -c 'select(.type == "exec")'
  logira tail --next                    # wait for the next run to start, then follow it
"""

_NOT_ACTIVE = ("not active", "no active", "not found", "unknown run")


def register(subparsers) -> None:
    p = readside.add_parser(
        subparsers, "tail", "Follow a run live (stored records first).",
        "Print what is stored so far, then follow new records from logirad until the run ends (or "
        "Ctrl-C). Filters work as in `query`; --rule/--severity show detections only here.", EXAMPLES,
    )  # fmt: skip
    readside.add_selector(p)
    p.add_argument("--next", action="store_true",
                   help="wait for the next run to start (ignore the runs that exist now), then follow it")
    add_filters(p, tail=True)
    readside.add_output(p, json_help="the stored JSONL lines, verbatim (with hash)")
    p.set_defaults(func=run, since=None, until=None)


class _Seq(msgspec.Struct):
    seq: int


class Printer:
    """Filters and renders batches of JSONL lines; remembers the last seq printed."""

    def __init__(self, args: argparse.Namespace, start_ts: int):
        self.out = readside.Out(args, start_ts)
        self.json = args.json
        flt = build_filter(args, None, start_ts, 0)
        self.cf = CompiledFilter(flt) if flt != type(flt)() else None
        self.tree = bool(args.tree)  # follow descendants of --pid as they appear
        self.matched: set[int] = set()  # event seqs matching the event conditions (for detections)
        self.last_seq = 0
        self._dec = msgspec.json.Decoder(StoredRecord)
        self._seq = msgspec.json.Decoder(_Seq)
        pal = self.out.palette
        self._type = {t: pal.paint(f"{t:<9}", code) for t, code in TYPE_CODES.items()}

    def lines(self, lines: Iterable[bytes]) -> None:
        out = []
        tf, typed = self.out.tf, self._type
        for line in lines:
            line = line.rstrip(b"\n")
            if not line:
                continue
            try:
                rec = self._dec.decode(line)
            except msgspec.DecodeError:
                continue
            if rec.seq <= self.last_seq:
                continue
            self.last_seq = rec.seq
            if self.cf is not None and not self._keep(rec):
                continue
            if self.json:
                out.append(line.decode("utf-8", "replace"))
            else:
                t = typed.get(rec.type) or f"{rec.type:<9}"
                out.append(f"{rec.seq:>7}  {tf(rec.ts):<9}  {t}  {rec.pid:>7}  {_summary(rec)}")
        if out:
            self.out.stream.write("\n".join(out) + "\n")
            self.out.stream.flush()

    def _keep(self, rec: StoredRecord) -> bool:
        cf = self.cf
        if not self.tree and not cf.has_event_conds and rec.type not in cf.types:
            return False  # cheap reject before deriving the row
        try:
            row = row_from_record(rec)
        except (msgspec.DecodeError, msgspec.ValidationError, KeyError):
            return False
        if self.tree and row.ppid in cf.pids:
            cf.pids.add(row.pid)
        if row.type != "detection":
            if cf.has_event_conds and cf.event_match(row):
                self.matched.add(row.seq)
            # --rule/--severity select detections only here: their events were printed before them
            return not cf.has_det_conds and cf.row_match(row, None)
        if not cf.common_match(row) or (cf.has_det_conds and not cf.det_match(row)):
            return False
        return not cf.has_event_conds or (row.related_seq or 0) in self.matched


def _file_lines(run_dir, below: int | None) -> Iterator[bytes]:
    """Raw lines of events.jsonl (complete lines only), stopping before seq `below`."""
    dec = msgspec.json.Decoder(_Seq)
    try:
        f = open(run_dir / "events.jsonl", "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return
    except OSError as exc:
        raise CliError(f"cannot read {esc(str(run_dir))}/events.jsonl: {exc.strerror}") from None
    with f:
        for line in f:
            if not line.endswith(b"\n"):
                return  # the writer is mid-line; the daemon will send it
            if below is not None:
                try:
                    if dec.decode(line).seq >= below:
                        return
                except msgspec.DecodeError:
                    continue
            yield line


def _batched(it: Iterator[bytes], n: int = 4096) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for x in it:
        batch.append(x)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


def _receive(conn, inbox: queue.Queue) -> None:
    """Thread: move every daemon message (or the CliError ending the stream) into `inbox`."""
    from logira.daemon import protocol

    while True:
        try:
            msg = conn.recv()
        except CliError as exc:
            inbox.put(exc)
            return
        except OSError as exc:  # the socket was closed under us (Ctrl-C in the main thread)
            inbox.put(CliError(f"reading from logirad failed: {exc.strerror or exc}"))
            return
        inbox.put(msg)
        if isinstance(msg, protocol.RunEnded | protocol.Error):
            return


NEXT_POLL_S = 0.1


def _run_ids(runs_dir: Path) -> set[str]:
    try:
        return set(os.listdir(runs_dir))
    except OSError:
        return set()


def _finished(run_dir: Path) -> bool:
    from logira.read import reader

    try:
        return reader.read_meta(run_dir).status != "running"
    except CliError:  # meta.json not written yet
        return False


def _next_run(runs_dir: Path) -> str:
    """Block until a run starts that did not exist when this was called; its run id.

    Watches both the daemon's active runs and the home's run directories, so a run that starts
    and ends between two polls is still found (it is then printed from the file)."""
    import time

    from logira.client.connection import Connection
    from logira.daemon import protocol

    try:
        conn = Connection.open()
    except CliError as exc:
        raise CliError(f"tail --next waits for logirad to start a run: {exc}") from None
    with conn:
        before = _run_ids(runs_dir) | {r.run_id for r in conn.request(protocol.Status(), protocol.StatusReply).runs}
        while True:
            active = conn.request(protocol.Status(), protocol.StatusReply).runs
            fresh = [r for r in active if r.run_id not in before]
            if fresh:
                return max(fresh, key=lambda r: r.start_ts).run_id
            for rid in sorted(_run_ids(runs_dir) - before, reverse=True):  # run ids sort by start time
                if _finished(runs_dir / rid):  # started and ended between two polls
                    return rid
            time.sleep(NEXT_POLL_S)


def run(args: argparse.Namespace) -> int:
    from logira.client.connection import Connection
    from logira.daemon import protocol
    from logira.read import reader

    readside.Out(args)  # validates --color/--ts
    validate_flags(args)
    if args.next and (args.run_opt or args.run):
        raise CliError("--next waits for a new run: it cannot be combined with a run selector", exit_code=2)
    home = reader.resolve_home()
    sel = _next_run(home / "runs") if args.next else readside.selector(args)
    conn = None
    try:
        conn = Connection.open()
    except CliError:
        conn = None  # no daemon: the stored records are all there is
    following = None
    if conn is not None:
        conn.send(protocol.Follow(run_id=sel))
        msg = conn.recv(timeout=10)
        if isinstance(msg, protocol.Error):
            if not any(s in msg.message for s in _NOT_ACTIVE):
                conn.close()
                raise CliError(f"logirad: {msg.message}")
            conn.close()
            conn = None
        elif isinstance(msg, protocol.Following):
            following = msg
        else:
            conn.close()
            raise CliError(
                f"logirad sent an unexpected {type(msg).__name__} to follow; client and daemon versions differ?"
            )
    run_dir = reader.resolve_run(home, following.run_id if following else sel)
    meta = reader.read_meta(run_dir)
    printer = Printer(args, meta.start_ts)
    # Receive live frames on a thread while the stored part is printed, so a long file read never
    # makes the daemon drop this follower as too slow.
    # Bounded: if the terminal cannot keep up, back-pressure reaches the daemon, which then drops
    # this follower with a one-line error instead of this process growing without limit.
    inbox: queue.Queue = queue.Queue(maxsize=256)
    if conn is not None:
        threading.Thread(target=_receive, args=(conn, inbox), daemon=True).start()
    try:
        for batch in _batched(_file_lines(run_dir, following.next_seq if following else None)):
            printer.lines(batch)
        if conn is None:
            return 0
        while True:
            try:
                msg = inbox.get(timeout=0.5)  # a timeout keeps Ctrl-C responsive
            except queue.Empty:
                continue
            if isinstance(msg, CliError):
                raise msg
            if isinstance(msg, protocol.Records):
                printer.lines(line.encode() for line in msg.lines)
            elif isinstance(msg, protocol.RunEnded):
                if msg.reason:
                    print(f"note: stream ended: {esc(msg.reason)}", file=sys.stderr)
                return 0
            elif isinstance(msg, protocol.Error):
                raise CliError(f"logirad: {msg.message}")
    finally:
        if conn is not None:
            conn.close()


def _summary(rec: StoredRecord) -> str:
    """The record's summary for the terminal (file paths that read like markup are quoted)."""
    if rec.type == "file":
        try:
            d = rec.data()
            return file_summary(d.op, d.path, d.path2, rec.summary)  # type: ignore[union-attr]
        except Exception:  # an undecodable payload: the stored summary, escaped
            pass
    return esc(rec.summary)
