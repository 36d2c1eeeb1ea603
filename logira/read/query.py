"""Event queries over one run: filters, the SQL they become, and the exact predicate.

One `EventFilter` drives every read command. It is turned into SQL over the per-run
`events` table (using its indexes) and ALSO into a Python predicate that every returned
row must pass. SQL narrows (an index-friendly superset where SQLite cannot express the
exact test, e.g. `*` not crossing `/`, CIDR), Python decides; so results are exact and do
not depend on the backend. When `index.sqlite` cannot be opened, the run's JSONL is
streamed into a temporary on-disk SQLite database with the same schema, so the JSONL
fallback runs the very same queries.

Filter semantics (documented in docs/cli.md):
- event conditions (--pid, --path, --op, --dest) select exec/proc/file/net events, and
  select a detection when its *related event* matches them;
- detection conditions (--rule, --severity) select detections; with an explicit
  non-detection --type they select the events that such detections relate to;
- --since/--until and --contains apply to every row.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import msgspec

from logira.errors import LogiraError
from logira.format.glob import char_class
from logira.model.record import DATA_TYPES, RECORD_TYPES, SEVERITIES, Record, StoredRecord

COLUMNS = (
    "seq, ts, type, op, pid, ppid, uid, summary, data_json, exe, path, path2, dst_ip, dst_port, dns, "
    "rule_id, severity, related_seq, run_id"
)
SEV_RANK = {s: i for i, s in enumerate(SEVERITIES)}


class Row(msgspec.Struct, gc=False):
    """One stored event with the denormalised columns of the `events` table."""

    seq: int
    ts: int
    type: str
    op: str | None
    pid: int | None
    ppid: int | None
    uid: int | None
    summary: str | None
    data_json: str | None
    exe: str | None
    path: str | None
    path2: str | None
    dst_ip: str | None
    dst_port: int | None
    dns: str | None
    rule_id: str | None
    severity: str | None
    related_seq: int | None
    run_id: str | None

    def data(self):
        """The decoded `data_json` payload for this row's type."""
        return msgspec.json.decode((self.data_json or "{}").encode(), type=DATA_TYPES[self.type])


def row_from_record(rec: StoredRecord) -> Row:
    """The `events` row of a JSONL record, derived exactly as the SQLite sink derives it."""
    from logira.format.index import event_row  # lazily: sqlite3 stays out of CLI startup

    return Row(*event_row(_full_record(rec)))


def _full_record(rec: StoredRecord) -> Record:
    return Record(
        run_id=rec.run_id, seq=rec.seq, ts=rec.ts, type=rec.type, pid=rec.pid, ppid=rec.ppid,
        uid=rec.uid, summary=rec.summary, data_json=rec.data(),
    )  # fmt: skip


# ---- filter pieces ------------------------------------------------------------------


class PathGlob:
    """A path glob: `**` crosses directories, `*`/`?` do not; no `/` = match the basename."""

    def __init__(self, pattern: str):
        if not pattern:
            raise LogiraError("empty --path pattern", exit_code=2)
        self.pattern = pattern
        self.basename_only = "/" not in pattern
        self.regex = re.compile(_glob_regex(pattern), re.DOTALL)
        sql = pattern.replace("**", "*").replace("[!", "[^")
        self.sql = ("*/" + sql) if self.basename_only else sql

    def match(self, path: str | None) -> bool:
        if not path:
            return False
        if self.basename_only:
            path = path.rsplit("/", 1)[-1]
        return self.regex.fullmatch(path) is not None


def _glob_regex(pat: str) -> str:
    out, i, n = [], 0, len(pat)
    while i < n:
        c = pat[i]
        if pat.startswith("**", i):
            at_dir_start = i == 0 or pat[i - 1] == "/"
            if at_dir_start and pat.startswith("**/", i):
                out.append("(?:.*/)?")
                i += 3
                continue
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and (cls := char_class(pat, i)) is not None:
            out.append(cls[0])
            i = cls[1]
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


class Dest:
    """--dest: `ip`, `ip:port`, `[v6]:port`, `:port`, `CIDR`, `host`, `host:port`."""

    def __init__(self, text: str):
        self.text = text
        self.ip: str | None = None
        self.net: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
        self.host: str | None = None
        self.port: int | None = None
        t = text.strip()
        bad = LogiraError(
            f"invalid --dest {text!r} (expected ip, ip:port, [v6]:port, :port, CIDR like 10.0.0.0/8, or a host name)",
            exit_code=2,
        )
        if not t:
            raise bad
        hostpart = t
        if t.startswith("["):
            end = t.find("]")
            if end < 0:
                raise bad
            hostpart, rest = t[1:end], t[end + 1 :]
            if rest:
                if not rest.startswith(":"):
                    raise bad
                self.port = _port(rest[1:], bad)
        elif t.count(":") == 1:
            hostpart, port = t.split(":")
            self.port = _port(port, bad)
        if "/" in hostpart:
            try:
                self.net = ipaddress.ip_network(hostpart, strict=False)
            except ValueError:
                raise bad from None
            return
        if not hostpart:
            if self.port is None:
                raise bad
            return
        try:
            self.ip = str(ipaddress.ip_address(hostpart))
        except ValueError:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", hostpart):
                raise bad from None
            self.host = hostpart.lower().rstrip(".")

    @property
    def exact_in_sql(self) -> bool:
        return self.net is None

    def match(self, row: Row) -> bool:
        if row.type != "net":
            return False
        if self.port is not None and row.dst_port != self.port:
            return False
        if self.ip is not None:
            return row.dst_ip is not None and _norm_ip(row.dst_ip) == self.ip
        if self.net is not None:
            try:
                return row.dst_ip is not None and ipaddress.ip_address(row.dst_ip) in self.net
            except ValueError:
                return False
        if self.host is not None:
            d = (row.dns or "").lower().rstrip(".")
            return d == self.host or d.endswith("." + self.host)
        return True


def _cidr_glob(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """An index-friendly GLOB superset of a network's addresses (exactness is checked in Python)."""
    if net.version == 4:
        fixed = net.prefixlen // 8
        return ".".join(str(net.network_address).split(".")[:fixed]) + ("." if fixed else "") + "*"
    return "*"


def _norm_ip(s: str) -> str:
    try:
        return str(ipaddress.ip_address(s))
    except ValueError:
        return s


def _port(s: str, bad: LogiraError) -> int:
    if not s.isdigit() or not 0 <= int(s) <= 65535:
        raise bad
    return int(s)


def parse_severity(text: str) -> tuple[str, ...]:
    """`high`, `>=medium`, `high,critical` → the allowed severities (validated)."""
    t = text.strip().lower()
    names = " | ".join(SEVERITIES)
    if t.startswith(">="):
        base = t[2:].strip()
        if base not in SEV_RANK:
            raise LogiraError(f"invalid --severity {text!r} (expected {names}, a list, or >=LEVEL)", exit_code=2)
        return tuple(s for s in SEVERITIES if SEV_RANK[s] >= SEV_RANK[base])
    out = tuple(p.strip() for p in t.split(","))
    for p in out:
        if p not in SEV_RANK:
            raise LogiraError(f"invalid --severity {text!r} (expected {names}, a list, or >=LEVEL)", exit_code=2)
    return out


def parse_types(text: str) -> tuple[str, ...]:
    """`--type exec,file` / `all` → the record types (validated)."""
    t = text.strip().lower()
    if t == "all":
        return ()
    out = tuple(p.strip() for p in t.split(","))
    for p in out:
        if p not in RECORD_TYPES:
            raise LogiraError(
                f"invalid --type {text!r} (expected {'|'.join(RECORD_TYPES)}|all, or a list)", exit_code=2
            )
    return out


def _in(parts: list[str], params: list, column: str, values) -> None:
    """Add `column IN (?, ...)` for a non-empty filter list."""
    if values:
        parts.append(f"{column} IN ({','.join('?' * len(values))})")
        params.extend(values)


def like_escape(s: str) -> str:
    """Escape `\\`, `%`, `_` for `LIKE ... ESCAPE '\\'` so the text matches literally."""
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class EventFilter(msgspec.Struct, kw_only=True):
    """Everything `query`/`tail`/`view` can filter on. Empty = no condition."""

    types: tuple[str, ...] = ()
    pids: tuple[int, ...] = ()
    path: str = ""
    ops: tuple[str, ...] = ()
    dest: str = ""
    contains: str = ""
    rules: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    since: int = 0
    until: int = 0
    # records of one tool call / the agent's runtime (logira/agents/calls.py); None = no condition
    seq_in: tuple[int, ...] | None = None
    seq_not_in: tuple[int, ...] | None = None


class CompiledFilter:
    """An EventFilter with its glob/dest parsed, usable as SQL and as a predicate."""

    def __init__(self, f: EventFilter, indexes: frozenset[str] = frozenset()):
        self.f = f
        self.indexes = indexes  # optional indexes present in this database (e.g. ev_change, ev_net)
        self.glob = PathGlob(f.path) if f.path else None
        self.dest = Dest(f.dest) if f.dest else None
        self.has_event_conds = bool(f.pids or f.ops or self.glob or self.dest)
        self.has_det_conds = bool(f.rules or f.severities)
        types = f.types or (("detection",) if self.has_det_conds else RECORD_TYPES)
        self.types = tuple(types)
        self.contains_lc = f.contains.translate(_ASCII_LOWER)
        self.pids = set(f.pids)  # a set so a live follower (tail --tree) can add descendants
        self.seq_in = frozenset(f.seq_in) if f.seq_in is not None else None
        self.seq_not_in = frozenset(f.seq_not_in) if f.seq_not_in is not None else None

    # -- the exact predicate ------------------------------------------------------
    def event_match(self, row: Row) -> bool:
        """Event conditions on a non-detection row."""
        f = self.f
        if self.pids and row.pid not in self.pids:
            return False
        if f.ops and row.op not in f.ops:
            return False
        if self.glob is not None and not (self.glob.match(row.path) or self.glob.match(row.path2)):
            return False
        return not (self.dest is not None and not self.dest.match(row))

    def det_match(self, row: Row) -> bool:
        f = self.f
        if f.rules and row.rule_id not in f.rules:
            return False
        return not (f.severities and row.severity not in f.severities)

    def common_match(self, row: Row) -> bool:
        f = self.f
        if row.type not in self.types:
            return False
        if self.seq_in is not None and row.seq not in self.seq_in:
            return False
        if self.seq_not_in is not None and row.seq in self.seq_not_in:
            return False
        if f.since and row.ts < f.since:
            return False
        if f.until and row.ts > f.until:
            return False
        if f.contains:
            hay = (row.summary or "").translate(_ASCII_LOWER)
            if self.contains_lc not in hay and self.contains_lc not in (row.data_json or "").translate(
                _ASCII_LOWER
            ):
                return False
        return True

    # -- SQL ----------------------------------------------------------------------
    def _event_sql(self, a: str, params: list) -> str:
        f, parts = self.f, []
        _in(parts, params, f"{a}.pid", f.pids)
        _in(parts, params, f"{a}.op", f.ops)
        if self.glob is not None:
            # Non-correlated subqueries, so SQLite scans the covering ev_path index (and the partial
            # ev_change index for rename/link targets) once instead of looking up every file row.
            p2 = ("SELECT seq FROM events INDEXED BY ev_change WHERE type = 'file' AND op != 'read' AND path2 GLOB ?"
                  if "ev_change" in self.indexes else
                  "SELECT seq FROM events WHERE path2 IS NOT NULL AND path2 GLOB ?")  # fmt: skip
            parts.append(f"{a}.seq IN (SELECT seq FROM events WHERE path GLOB ? UNION {p2})")
            params.extend([self.glob.sql, self.glob.sql])
        d = self.dest
        if d is not None:
            hint = "INDEXED BY ev_net" if "ev_net" in self.indexes else ""
            conds = ["type = 'net'"]
            if d.ip is not None:
                conds.append("dst_ip = ?")
                params_d: list = [d.ip]
            elif d.net is not None:
                conds.append("dst_ip GLOB ?")
                params_d = [_cidr_glob(d.net)]
            elif d.host is not None:
                hint = ""
                conds = []  # only net rows have a dns; leaving out the type test lets ev_dns cover it
                conds.append("dns IS NOT NULL AND (dns LIKE ? ESCAPE '\\' OR dns LIKE ? ESCAPE '\\')")
                params_d = [like_escape(d.host), "%." + like_escape(d.host)]
            else:
                params_d = []
            if d.port is not None:
                conds.append("dst_port = ?")
                params_d.append(d.port)
            parts.append(f"{a}.seq IN (SELECT seq FROM events {hint} WHERE {' AND '.join(conds)})")
            params.extend(params_d)
        return " AND ".join(parts) or "1"

    def _det_sql(self, a: str, params: list) -> str:
        f, parts = self.f, []
        _in(parts, params, f"{a}.rule_id", f.rules)
        _in(parts, params, f"{a}.severity", f.severities)
        return " AND ".join(parts) or "1"

    def sql(self, reverse: bool, limit: int | None) -> tuple[str, list, bool]:
        """(query, params, joins_related). Rows are `COLUMNS` (+ related row columns)."""
        f, params, where = self.f, [], []
        want_det = "detection" in self.types
        join = want_det and self.has_event_conds
        where.append(f"e.type IN ({','.join('?' * len(self.types))})")
        params.extend(self.types)
        if f.seq_in is not None:
            where.append("e.seq IN (SELECT value FROM json_each(?))")
            params.append(msgspec.json.encode(list(f.seq_in)).decode())
        if f.seq_not_in:
            where.append("e.seq NOT IN (SELECT value FROM json_each(?))")
            params.append(msgspec.json.encode(list(f.seq_not_in)).decode())
        if f.since:
            where.append("e.ts >= ?")
            params.append(f.since)
        if f.until:
            where.append("e.ts <= ?")
            params.append(f.until)
        if f.contains:
            where.append("(e.summary LIKE ? ESCAPE '\\' OR e.data_json LIKE ? ESCAPE '\\')")
            pat = "%" + like_escape(f.contains) + "%"
            params.extend([pat, pat])
        only_det = self.types == ("detection",)
        cte = ""
        if self.has_event_conds:
            # m = seqs of the events matching the event conditions, computed once (index-driven);
            # a detection matches when its related event is in m.
            cte_params: list = []
            cte = (f"WITH m(seq) AS MATERIALIZED (SELECT x.seq FROM events x WHERE x.type != 'detection' "
                   f"AND {self._event_sql('x', cte_params)}) ")  # fmt: skip
            params[:0] = cte_params
            det_part = "SELECT d.seq FROM events d WHERE d.type = 'detection' AND d.related_seq IN m"
            if only_det:
                where.append(f"e.seq IN ({det_part})")
            elif want_det:
                where.append(f"e.seq IN (SELECT seq FROM m UNION ALL {det_part})")
            else:
                where.append("e.seq IN m")
        if self.has_det_conds:
            if only_det:
                where.append(self._det_sql("e", params))
            else:
                d1 = self._det_sql("e", params)
                d2 = self._det_sql("d", params)
                where.append(
                    f"((e.type = 'detection' AND {d1}) OR (e.type != 'detection' AND e.seq IN "
                    f"(SELECT d.related_seq FROM events d WHERE d.type = 'detection' AND {d2})))"
                )
        cols = ", ".join(f"e.{c.strip()}" for c in COLUMNS.split(","))
        frm = "events e"
        if join:
            cols += ", " + ", ".join(f"r.{c.strip()}" for c in COLUMNS.split(","))
            frm += " LEFT JOIN events r ON r.seq = e.related_seq"
        sql = f"{cte}SELECT {cols} FROM {frm} WHERE {' AND '.join(where)} ORDER BY e.seq {'DESC' if reverse else 'ASC'}"
        exact = (self.glob is None) and (self.dest is None or self.dest.exact_in_sql)
        if limit is not None and exact:
            sql += f" LIMIT {int(limit)}"
        return sql, params, join

    def row_match(self, row: Row, rel: Row | None) -> bool:
        """Exact test of a row returned by SQL (`rel` = its related event, when joined)."""
        if not self.common_match(row):
            return False
        if row.type == "detection":
            if self.has_det_conds and not self.det_match(row):
                return False
            if self.has_event_conds:
                return rel is not None and rel.type != "detection" and self.event_match(rel)
            return True
        return not (self.has_event_conds and not self.event_match(row))


# ---- the run source -------------------------------------------------------------------

N_COLS = len(COLUMNS.split(","))


class RunSource:
    """Read access to one run's events: its index.sqlite, or a temporary index of its JSONL."""

    def __init__(self, run_dir: Path, db: sqlite3.Connection | None = None, running: bool = False):
        from logira.read import reader

        self.dir = run_dir
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.fallback = False
        self.db = db if db is not None else reader.open_db(run_dir)
        if self.db is None or not _has_events(self.db):
            self.db = self._index_jsonl(run_dir, quiet=running)
            self.fallback = True
        self.indexes = frozenset(
            n for (n,) in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        )

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> RunSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _index_jsonl(self, run_dir: Path, quiet: bool) -> sqlite3.Connection:
        # A run in progress has no published index yet (by design), so no note for it.
        from logira.format.index import create_schema, event_row
        from logira.read import reader

        if not (run_dir / "events.jsonl").exists():
            raise LogiraError(f"run {run_dir.name} has neither a readable index.sqlite nor events.jsonl")
        if not quiet:
            print(
                f"note: {run_dir.name}: index.sqlite unreadable; indexing events.jsonl into a temporary database",
                file=sys.stderr,
            )
        self._tmp = tempfile.TemporaryDirectory(prefix="logira-idx-")
        conn = sqlite3.connect(os.path.join(self._tmp.name, "index.sqlite"))
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        create_schema(conn)
        batch: list[tuple] = []
        ins = f"INSERT OR IGNORE INTO events({COLUMNS}) VALUES ({','.join('?' * N_COLS)})"
        for rec in reader.iter_records(run_dir):
            try:
                batch.append(event_row(_full_record(rec)))
            except (msgspec.DecodeError, msgspec.ValidationError, KeyError):  # counted by `verify`, not here
                continue
            if len(batch) >= 5000:
                conn.executemany(ins, batch)
                batch.clear()
        conn.executemany(ins, batch)
        conn.commit()
        return conn

    def select(self, flt: EventFilter, limit: int | None = None, reverse: bool = False) -> Iterator[Row]:
        """Rows matching `flt` in seq order (or reversed), at most `limit`."""
        cf = CompiledFilter(flt, self.indexes)
        sql, params, join = cf.sql(reverse, limit)
        n = 0
        if limit is not None and limit <= 0:
            return
        for tup in self.db.execute(sql, params):
            row = Row(*tup[:N_COLS])
            rel = Row(*tup[N_COLS:]) if join and tup[N_COLS] is not None else None
            if cf.row_match(row, rel):
                yield row
                n += 1
                if limit is not None and n >= limit:
                    return

    def get(self, seq: int) -> Row | None:
        """One row by seq."""
        tup = self.db.execute(f"SELECT {COLUMNS} FROM events WHERE seq = ?", (seq,)).fetchone()
        return Row(*tup) if tup else None

    def descendants(self, pids: tuple[int, ...]) -> tuple[int, ...]:
        """`pids` and every process forked below them (from exec/proc records)."""
        children: dict[int, set[int]] = {}
        for pid, ppid in self.db.execute(
            "SELECT DISTINCT pid, ppid FROM events WHERE type IN ('exec','proc')"
        ):
            if pid is not None and ppid is not None:
                children.setdefault(ppid, set()).add(pid)
        out, todo = set(pids), list(pids)
        while todo:
            for c in children.get(todo.pop(), ()):
                if c not in out:
                    out.add(c)
                    todo.append(c)
        return tuple(sorted(out))


def _has_events(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("SELECT seq FROM events LIMIT 1").fetchall()
        return True
    except sqlite3.Error:
        return False
