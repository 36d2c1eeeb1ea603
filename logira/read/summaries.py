"""Per-run summaries, indexed per home, so a run can be compared with its history without a rescan.

A summary is the set of things a run did that matter when asking "what is new": programs it
executed, remote destinations (ip:port) and DNS names, paths it wrote outside its workspace,
credential/config paths it read or wrote, and the rules that fired. Summaries are kept in
`$LOGIRA_HOME/summaries.sqlite` (0600, the user's), one row per finished run plus its items.

Integrity: a cached summary is used only while it still matches the run's meta.json
(`final_hash`, `event_count`) and the summary version; anything else is recomputed from the run's
index. A database that is not ours (schema, user_version) or is corrupt is rebuilt from the runs.
When the home is not writable the index lives in memory for the one command.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from logira.format.meta import RunMeta
from logira.read.workspace import inside, workspace_of

SUMMARY_VERSION = 1
DB_VERSION = 2
ITEMS_MAX = 5000  # per kind and run; beyond it the run's summary is marked truncated
KINDS = ("program", "destination", "dns", "write_outside", "credential", "detection")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs(run_id TEXT PRIMARY KEY, workspace TEXT NOT NULL, start_ts INTEGER NOT NULL,
                                final_hash TEXT NOT NULL, event_count INTEGER NOT NULL, version INTEGER NOT NULL,
                                truncated INTEGER NOT NULL, meta_key TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS runs_ws ON runs(workspace, start_ts);
CREATE TABLE IF NOT EXISTS items(kind TEXT NOT NULL, value TEXT NOT NULL, run_id TEXT NOT NULL,
                                 PRIMARY KEY(kind, value, run_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_run ON items(run_id, kind);
"""

# Credential and agent/tool configuration paths (read or written): a home directory's secrets and the
# files that change how tools behave. Matched on the recorded absolute path.
_HOME = r"(?:/home/[^/]+|/root)"
CREDENTIAL_RE = re.compile(
    rf"^{_HOME}/(?:\.ssh/|\.aws/|\.azure/|\.config/gcloud/|\.kube/|\.docker/config\.json$|\.netrc$|"
    r"\.git-credentials$|\.gitconfig$|\.npmrc$|\.pypirc$|\.yarnrc|\.gnupg/|\.password-store/|\.config/gh/|"
    r"\.config/git/|\.claude/settings[^/]*\.json$|\.claude\.json$|\.codex/(?:config\.toml|auth\.json|hooks\.json)$|"
    r"\.gemini/settings\.json$|\.bashrc$|\.bash_profile$|\.profile$|\.zshrc$|\.zprofile$|\.config/fish/|"
    r"\.local/share/keyrings/|\.mozilla/|\.config/google-chrome/|\.config/chromium/)"
    r"|^/etc/(?:shadow|gshadow|sudoers|ssh/|ld\.so\.preload$|environment$|profile)"
    r"|(?:^|/)\.env(?:\.[^/]*)?$"
)
_NOT_WRITES = re.compile(r"^/(?:dev|proc|sys)/")


class RunSummary:
    """The items of one run, by kind (sets of strings), and whether any kind hit ITEMS_MAX."""

    def __init__(self, run_id: str, workspace: str, start_ts: int):
        self.run_id = run_id
        self.workspace = workspace
        self.start_ts = start_ts
        self.items: dict[str, list[str]] = {k: [] for k in KINDS}
        self.truncated = False

    def add(self, kind: str, values: Iterable[str]) -> None:
        seen = set(self.items[kind])
        out = self.items[kind]
        for v in values:
            if v and v not in seen:
                if len(out) >= ITEMS_MAX:
                    self.truncated = True
                    return
                seen.add(v)
                out.append(v)


def _dst(ip: str, port: int | None) -> str:
    return f"[{ip}]:{port or 0}" if ":" in ip else f"{ip}:{port or 0}"


def summarize(db: sqlite3.Connection, meta: RunMeta) -> RunSummary:
    """The summary of one run from its index (a handful of DISTINCT queries on indexed columns)."""
    ws = workspace_of(meta.cwd)
    s = RunSummary(meta.run_id, ws, meta.start_ts)
    lim = ITEMS_MAX + 1
    s.add(
        "program",
        (
            r[0]
            for r in db.execute(
                "SELECT DISTINCT exe FROM events WHERE type = 'exec' AND op = 'exec' AND exe IS NOT NULL LIMIT ?",
                (lim,),
            )
        ),
    )
    s.add(
        "destination",
        (
            _dst(ip, port)
            for ip, port in db.execute(
                "SELECT DISTINCT dst_ip, dst_port FROM events WHERE type = 'net' AND op IN ('connect', 'send') "
                "AND dst_ip IS NOT NULL AND dst_ip != '' LIMIT ?",
                (lim,),
            )
        ),
    )
    s.add(
        "dns",
        (
            r[0].lower().rstrip(".")
            for r in db.execute(
                "SELECT DISTINCT dns FROM events WHERE dns IS NOT NULL AND dns != '' LIMIT ?", (lim,)
            )
        ),
    )
    outside: list[str] = []
    creds: list[str] = []
    idx = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    # failed attempts (rare; `file <op> DENIED (EACCES) <path>` summaries) are not writes
    failed = {(p, op) for p, op in db.execute(
        "SELECT DISTINCT path, op FROM events NOT INDEXED WHERE type = 'file' "
        "AND (summary GLOB 'file * DENIED (*' OR summary GLOB 'file * FAILED (*')")}
    ok_write = {p for p, op in db.execute(
        f"SELECT path, op FROM events {'INDEXED BY ev_change' if 'ev_change' in idx else ''} "
        "WHERE type = 'file' AND op != 'read' AND path IS NOT NULL GROUP BY path, op") if (p, op) not in failed}
    for (path,) in db.execute(
        f"SELECT DISTINCT path FROM events {'INDEXED BY ev_path' if 'ev_path' in idx else ''} "
        "WHERE path IS NOT NULL AND type = 'file'"
    ):
        if CREDENTIAL_RE.search(path):
            creds.append(path)
        if path in ok_write and not inside(path, ws) and not _NOT_WRITES.match(path):
            outside.append(path)
        if len(outside) > ITEMS_MAX and len(creds) > ITEMS_MAX:
            break
    for (p2,) in db.execute(
        "SELECT DISTINCT path2 FROM events WHERE type = 'file' AND path2 IS NOT NULL AND op IN ('rename', 'link') "
        "AND coalesce(data_json ->> '$.errno', 0) = 0 LIMIT ?",
        (lim,),
    ):
        if not inside(p2, ws) and not _NOT_WRITES.match(p2):
            outside.append(p2)
        if CREDENTIAL_RE.search(p2):
            creds.append(p2)
    s.add("write_outside", outside)
    s.add("credential", creds)
    s.add(
        "detection",
        (
            r[0]
            for r in db.execute(
                "SELECT DISTINCT rule_id FROM events WHERE type = 'detection' AND rule_id IS NOT NULL LIMIT ?",
                (lim,),
            )
        ),
    )
    return s  # fmt: skip


class SummaryIndex:
    """The per-home index of run summaries (`summaries.sqlite`), refreshed from the runs on open."""

    def __init__(self, home: Path):
        self.home = home
        self.path = home / "summaries.sqlite"
        self.db = self._open()
        self.rebuilt = 0  # summaries computed by the last refresh()

    def _open(self) -> sqlite3.Connection:
        if not (self.home / "runs").is_dir() or not os.access(self.home, os.W_OK):
            return self._memory()
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            os.close(fd)
            conn = sqlite3.connect(self.path, timeout=10)
            if not self._valid(conn):
                conn.close()
                os.unlink(self.path)  # not ours or from another version: rebuilt from the runs
                conn = sqlite3.connect(self.path, timeout=10)
            conn.executescript(SCHEMA)
            conn.execute(f"PRAGMA user_version = {DB_VERSION}")
            conn.commit()
            # a cache, rebuilt when damaged: no fsync per stored summary (1 000 first summaries were
            # 1 000 fsyncs), and commits every 50 summaries
            conn.execute("PRAGMA synchronous=OFF")
            return conn
        except (OSError, sqlite3.Error):
            with contextlib.suppress(OSError):
                if self.path.is_file() and not self.path.is_symlink():
                    os.unlink(self.path)
            return self._memory()

    @staticmethod
    def _memory() -> sqlite3.Connection:
        conn = sqlite3.connect(":memory:")
        conn.executescript(SCHEMA)
        return conn

    @staticmethod
    def _valid(conn: sqlite3.Connection) -> bool:
        try:
            v = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if v == 0 and not tables:
                return True  # new file
            # (no quick_check here: it reads the whole file on every command; a corrupt page shows up
            # as sqlite3.DatabaseError on use, and the caller rebuilds the index then)
            return v == DB_VERSION and {"runs", "items"} <= tables
        except sqlite3.Error:
            return False

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> SummaryIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def store(self, s: RunSummary, meta: RunMeta, commit: bool = True, meta_key: str = "") -> None:
        db = self.db
        with contextlib.nullcontext() if not commit else db:
            db.execute("DELETE FROM items WHERE run_id = ?", (s.run_id,))
            db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?)",
                (s.run_id, s.workspace, s.start_ts, meta.final_hash, meta.event_count, SUMMARY_VERSION,
                 int(s.truncated), meta_key),
            )  # fmt: skip
            db.executemany(
                "INSERT OR IGNORE INTO items VALUES (?,?,?)",
                ((k, v, s.run_id) for k, vals in s.items.items() for v in vals),
            )

    def refresh(self, home: Path) -> None:
        """Bring the index up to date with the finished runs of `home` (and forget runs that are gone).

        A run whose meta.json has not changed since its summary was stored (same mtime, size and
        inode) is not read again; a changed meta.json is decoded, and its summary recomputed unless
        `final_hash` and `event_count` still match (then only the stat key is updated).
        """
        from logira.read.query import RunSource
        from logira.read.reader import read_meta
        from logira.storage.runids import validate_run_id

        cached = {r[0]: r[1:] for r in self.db.execute(
            "SELECT run_id, final_hash, event_count, version, meta_key FROM runs")}  # fmt: skip
        present: set[str] = set()
        self.rebuilt = 0
        try:
            entries = list(os.scandir(home / "runs"))
        except OSError:
            entries = []
        for entry in entries:
            try:
                validate_run_id(entry.name)
                if not entry.is_dir(follow_symlinks=False):
                    continue
                st = os.stat(os.path.join(entry.path, "meta.json"), follow_symlinks=False)
            except (ValueError, OSError):
                continue
            key = f"{st.st_mtime_ns}:{st.st_size}:{st.st_ino}"
            row = cached.get(entry.name)
            if row is not None and row[2] == SUMMARY_VERSION and row[3] == key:
                present.add(entry.name)
                continue
            try:
                meta = read_meta(Path(entry.path))
            except Exception:  # an unreadable meta.json: no summary (`logira verify` reports it)
                continue
            if meta.status == "running" or meta.run_id != entry.name:
                continue
            present.add(entry.name)
            if row is not None and row[:3] == (meta.final_hash, meta.event_count, SUMMARY_VERSION):
                self.db.execute("UPDATE runs SET meta_key = ? WHERE run_id = ?", (key, entry.name))
                continue
            try:
                with RunSource(Path(entry.path), running=True) as src:
                    s = summarize(src.db, meta)
            except Exception:  # an unreadable run has no summary; `logira verify` reports it
                continue
            self.store(s, meta, commit=False, meta_key=key)
            self.rebuilt += 1
            if self.rebuilt % 50 == 0:
                self.db.commit()
        self.db.commit()
        gone = [rid for rid in cached if rid not in present]
        if gone:
            with self.db:
                self.db.executemany("DELETE FROM items WHERE run_id = ?", ((g,) for g in gone))
                self.db.executemany("DELETE FROM runs WHERE run_id = ?", ((g,) for g in gone))

    def baseline(self, workspace: str, before_ts: int, exclude: str, last: int | None = None) -> list[str]:
        """Run ids of the workspace that started before `before_ts` (newest first, at most `last`)."""
        sql = "SELECT run_id FROM runs WHERE workspace = ? AND start_ts < ? AND run_id != ? ORDER BY start_ts DESC"
        params: list = [workspace, before_ts, exclude]
        if last is not None:
            sql += " LIMIT ?"
            params.append(last)
        return [r[0] for r in self.db.execute(sql, params)]

    def new_items(self, subject: RunSummary, baseline: list[str]) -> dict[str, list[str]]:
        """The subject's items that no baseline run has, by kind (in the subject's order)."""
        db = self.db
        db.execute("CREATE TEMP TABLE IF NOT EXISTS base(run_id TEXT PRIMARY KEY) WITHOUT ROWID")
        db.execute("DELETE FROM base")
        db.executemany("INSERT OR IGNORE INTO base VALUES (?)", ((r,) for r in baseline))
        out: dict[str, list[str]] = {}
        # one indexed probe per item, stopping at the first baseline run that has it (an item seen
        # in every earlier run costs one lookup, not one per run)
        probe = ("SELECT 1 FROM items WHERE kind = ? AND value = ? AND run_id IN (SELECT run_id FROM base) LIMIT 1")
        for kind in KINDS:
            out[kind] = [v for v in subject.items[kind] if db.execute(probe, (kind, v)).fetchone() is None]
        return out

    def cached(self, run_id: str) -> RunSummary | None:
        row = self.db.execute(
            "SELECT workspace, start_ts, truncated FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        if row is None:
            return None
        s = RunSummary(run_id, row[0], row[1])
        s.truncated = bool(row[2])
        for kind, value in self.db.execute(
            "SELECT kind, value FROM items WHERE run_id = ? ORDER BY kind", (run_id,)
        ):
            s.items[kind].append(value)
        return s
