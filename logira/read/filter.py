"""`EventFilter` (what a read command asks for) and `CompiledFilter` (the SQL it becomes, and the
exact Python predicate every returned row must pass). Semantics: logira/read/query.py."""

from __future__ import annotations

import msgspec

from logira.model.record import RECORD_TYPES
from logira.read.matchers import Dest, PathGlob, _cidr_glob
from logira.read.row import COLUMNS, Row


def _in(parts: list[str], params: list, column: str, values) -> None:
    """Add `column IN (?, ...)` for a non-empty filter list."""
    if values:
        parts.append(f"{column} IN ({','.join('?' * len(values))})")
        params.extend(values)


def like_escape(s: str) -> str:
    """Escape `\\`, `%`, `_` for `LIKE ... ESCAPE '\\'` so the text matches literally."""
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


LOOSE_SCAN_MIN_ROWS = 50_000  # below this a plain index scan is as fast


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
    result: str = ""  # ok | failed (any errno, denied included) | denied (EACCES, EPERM)


RESULTS = ("ok", "failed", "denied")
_DENIED = (1, 13)  # EPERM, EACCES: logira.model.paths.DENIED_ERRNOS


class _Errno(msgspec.Struct):
    errno: int = 0


_errno_of = msgspec.json.Decoder(_Errno).decode


def result_ok(want: str, errno: int) -> bool:
    """Does an event with this errno have the wanted result?"""
    if want == "ok":
        return errno == 0
    if want == "denied":
        return errno in _DENIED
    return errno != 0


class CompiledFilter:
    """An EventFilter with its glob/dest parsed, usable as SQL and as a predicate."""

    def __init__(self, f: EventFilter, indexes: frozenset[str] = frozenset(), rows: int = 0):
        self.f = f
        self.indexes = indexes  # optional indexes present in this database (e.g. ev_change, ev_net)
        self.rows = rows  # about how many events the run has (max seq): chooses the --path plan
        self.glob = PathGlob(f.path) if f.path else None
        self.dest = Dest(f.dest) if f.dest else None
        self.has_event_conds = bool(f.pids or f.ops or self.glob or self.dest or f.result)
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
        if f.result:
            try:
                errno = _errno_of(row.data_json or "{}").errno
            except (msgspec.DecodeError, TypeError):
                errno = 0
            if not result_ok(f.result, errno):
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
        if f.result:
            err = f"COALESCE({a}.data_json ->> '$.errno', 0)"
            parts.append({"ok": f"{err} = 0", "denied": f"{err} IN (1, 13)"}.get(f.result, f"{err} != 0"))
        if self.glob is not None:
            # Non-correlated subqueries, so SQLite scans the covering ev_path index (and the partial
            # ev_change index for rename/link targets) once instead of looking up every file row.
            p2 = ("SELECT seq FROM events INDEXED BY ev_change WHERE type = 'file' AND op != 'read' AND path2 GLOB ?"
                  if "ev_change" in self.indexes else
                  "SELECT seq FROM events WHERE path2 IS NOT NULL AND path2 GLOB ?")  # fmt: skip
            if "ev_path" in self.indexes and self.rows > LOOSE_SCAN_MIN_ROWS:
                # Loose index scan: GLOB each DISTINCT path once (one ev_path seek per path) instead
                # of every row; agents touch the same files over and over, so a 1M-event run has
                # ~50k paths. Capped at rows/8 seeks; past the cap the rest of the index is range-
                # scanned from the last path seen, so it never costs much more than a plain scan.
                cap = max(1, self.rows // 8)
                p1 = ("WITH RECURSIVE d(p, n) AS (SELECT min(path), 1 FROM events UNION ALL "
                      "SELECT (SELECT path FROM events WHERE path > d.p ORDER BY path LIMIT 1), n + 1 "
                      "FROM d WHERE d.p IS NOT NULL AND n < ?) "
                      "SELECT seq FROM events WHERE path IN (SELECT p FROM d WHERE p GLOB ?) UNION ALL "
                      "SELECT seq FROM events WHERE path > (SELECT p FROM d WHERE n = ?) AND path GLOB ?")
                parts.append(f"{a}.seq IN ({p1} UNION {p2})")
                params.extend([cap, self.glob.sql, cap, self.glob.sql, self.glob.sql])
            else:
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
