"""One row of a run's `events` table (the columns are format/index.py's EVENT_COLUMNS, defined once)."""

from __future__ import annotations

import msgspec

from logira.format.index import EVENT_COLUMNS
from logira.model.record import DATA_TYPES, Record, StoredRecord

COLUMNS = ", ".join(EVENT_COLUMNS)
N_COLS = len(EVENT_COLUMNS)


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
