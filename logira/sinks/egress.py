"""The destinations a run sent to, remembered for the "new egress destination" detection.

`EgressCollector` is a fan-out sink (logira.sinks.base.Sink) that stores nothing: it keeps each
distinct outbound destination (ip:port of connect/send records) with the first record's seq and
pid and the DNS names seen for it, capped at DESTS_MAX (beyond it `dropped` counts what was not
kept). daemon/egress.py compares them with the workspace's history at finalize.
"""

from __future__ import annotations

from collections.abc import Sequence

from logira.format.meta import RunMeta
from logira.model.record import NetData, Record
from logira.sinks.base import SinkStats

DESTS_MAX = 10_000


class EgressCollector:
    name = "egress"

    def __init__(self) -> None:
        self.stats = SinkStats()
        self.seen: dict[str, tuple[int, int, int]] = {}  # "ip:port" -> (first seq, pid, ts)
        self.dns: dict[str, set[str]] = {}
        self.dropped = 0

    async def open(self, meta: RunMeta) -> None:
        return None

    async def write_batch(self, records: Sequence[Record]) -> None:
        seen = self.seen
        for rec in records:
            d = rec.data_json
            if rec.type != "net" or not isinstance(d, NetData) or d.op not in ("connect", "send") or not d.dst_ip:
                continue
            key = f"[{d.dst_ip}]:{d.dst_port}" if ":" in d.dst_ip else f"{d.dst_ip}:{d.dst_port}"
            if key not in seen:
                if len(seen) >= DESTS_MAX:
                    self.dropped += 1
                    continue
                seen[key] = (rec.seq, rec.pid, rec.ts)
            if d.dns_qname:
                self.dns.setdefault(key, set()).add(d.dns_qname.lower().rstrip("."))

    async def flush(self) -> None:
        return None

    async def close(self, meta: RunMeta) -> None:
        return None
