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

The pieces: read/row.py (`Row`), read/matchers.py (--path/--dest/--severity/--type),
read/filter.py (`EventFilter`, `CompiledFilter`: SQL compiler and exact predicate),
read/source.py (`RunSource`, with the JSONL fallback). This module names them for callers.
"""

from __future__ import annotations

from logira.read.filter import RESULTS, CompiledFilter, EventFilter, like_escape
from logira.read.matchers import SEV_RANK, Dest, PathGlob, parse_severity, parse_types
from logira.read.row import COLUMNS, N_COLS, Row, row_from_record
from logira.read.source import RunSource

__all__ = [
    "COLUMNS", "N_COLS", "RESULTS", "SEV_RANK", "CompiledFilter", "Dest", "EventFilter", "PathGlob", "Row", "RunSource",
    "like_escape", "parse_severity", "parse_types", "row_from_record",
]
