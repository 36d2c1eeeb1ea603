"""OTLP logs over HTTP (JSON encoding): stream every run's records to a collector, never blocking capture.

`write_batch()` only appends to a bounded in-memory queue (no I/O, no encoding) and returns; one
exporter thread encodes (format/otlp.py), POSTs `/v1/logs` with the standard library, and retries
transient failures (connection errors, timeouts, 429, 502/503/504) with exponential backoff. What
cannot be delivered is counted per run, never silently dropped:
- `shed`: the queue was full (the collector is slower than the run);
- `failed`: a batch was refused permanently (4xx) or still failing after the last retry;
- `rejected`: the collector accepted the request but reported `partialSuccess.rejectedLogRecords`;
- `unsent`: still queued when the run ended and `finish_run()`'s wait ran out.
The counts go into the run's meta.json under `export_losses.otlp`. A run's record is complete
whatever happens here: the JSONL and SQLite on disk are authoritative; the export is a copy.

Two classes: `OtlpExporter` is daemon-wide (one thread, one queue for every run: start() /
write_batch(run_id, records) / flush(timeout) / finish_run(run_id, timeout) -> losses / close());
`OtlpSink` is a run's `logira.sinks.base.Sink` in the fan-out, handing that run's batches to the
exporter and, at close, waiting (bounded) for them and writing the losses into the final meta.
"""

from __future__ import annotations

import asyncio
import collections
import http.client
import socket
import threading
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any

import msgspec

from logira import __version__
from logira.format import otlp as fmt
from logira.format.meta import RunMeta
from logira.model.record import Record
from logira.sinks.base import SinkStats


class OtlpConfig(msgspec.Struct, kw_only=True):
    endpoint: str  # http(s)://host:port[/v1/logs]
    timeout: float = 5.0  # per request
    batch_max: int = 1024  # records per request
    queue_max: int = 100_000  # records waiting, over all runs; beyond it new records are shed and counted
    retries: int = 4  # after the first attempt
    backoff: float = 0.25  # first retry delay, doubled each time (max 8 s)
    headers: dict[str, str] = {}
    host: str = ""  # resource host.name (default: this machine's name)


class ExportError(Exception):
    """One attempt failed; `retry` says whether another attempt may succeed."""

    def __init__(self, message: str, retry: bool):
        super().__init__(message)
        self.retry = retry


def parse_endpoint(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of an OTLP/HTTP logs endpoint; ValueError with a one-line message."""
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ValueError(f"OTLP endpoint {url!r} must be http://host:port or https://host:port")
    path = u.path or ""
    if not path.endswith("/v1/logs"):
        path = path.rstrip("/") + "/v1/logs"
    return u.scheme, u.hostname, u.port or (443 if u.scheme == "https" else 4318), path


class OtlpPoster:
    """POSTs request bodies to one endpoint over a kept-alive connection."""

    def __init__(self, endpoint: str, timeout: float, headers: dict[str, str] | None = None):
        self.scheme, self.host, self.port, self.path = parse_endpoint(endpoint)
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json", "User-Agent": f"logira/{__version__}",
                        **(headers or {})}  # fmt: skip
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            self._conn = cls(self.host, self.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def post(self, body: bytes) -> int:
        """Send one request; the number of records the collector rejected (partial success)."""
        conn = self._connection()
        try:
            conn.request("POST", self.path, body=body, headers=self.headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            what = "timed out" if isinstance(exc, (TimeoutError, socket.timeout)) else str(exc) or type(exc).__name__
            raise ExportError(f"collector {self.host}:{self.port} {what}", retry=True) from None
        if resp.status in (429, 502, 503, 504):
            raise ExportError(f"collector answered {resp.status}", retry=True)
        if not 200 <= resp.status < 300:
            raise ExportError(f"collector answered {resp.status}: {data[:200]!r}", retry=False)
        if data and b"rejected" in data:
            try:
                ps = msgspec.json.decode(data).get("partialSuccess") or {}
                return int(ps.get("rejectedLogRecords") or 0)
            except (msgspec.DecodeError, AttributeError, ValueError):
                return 0
        return 0


class _RunState:
    __slots__ = ("delivered", "failed", "inflight", "queued", "rejected", "shed", "unsent")

    def __init__(self) -> None:
        self.queued = 0
        self.inflight = 0
        self.delivered = 0
        self.shed = 0
        self.failed = 0
        self.rejected = 0
        self.unsent = 0

    def losses(self) -> dict[str, int]:
        return {k: v for k, v in (("shed", self.shed), ("failed", self.failed), ("rejected", self.rejected),
                                  ("unsent", self.unsent)) if v}  # fmt: skip


class OtlpExporter:
    """The daemon-wide OTLP exporter (one thread, one bounded queue for every run)."""

    def __init__(self, cfg: OtlpConfig, host: str = "") -> None:
        parse_endpoint(cfg.endpoint)
        self.cfg = cfg
        self.resource = fmt.resource(cfg.host or host or socket.gethostname(), __version__)
        self._q: collections.deque[tuple[str, list[Any]]] = collections.deque()
        self._qlen = 0
        self._cv = threading.Condition()
        self._runs: dict[str, _RunState] = {}
        self._stop = False
        self._thread: threading.Thread | None = None
        self.requests = 0
        self.last_error = ""

    # -- producer side (the daemon's event loop): never blocks --------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="otlp-export", daemon=True)
        self._thread.start()

    def write_batch(self, run_id: str, records: list[Any]) -> None:
        with self._cv:
            st = self._runs.get(run_id)
            if st is None:
                st = self._runs[run_id] = _RunState()
            room = self.cfg.queue_max - self._qlen
            if room <= 0 or self._stop:
                st.shed += len(records)
                return
            if len(records) > room:
                st.shed += len(records) - room
                records = records[:room]
            self._q.append((run_id, records))
            self._qlen += len(records)
            st.queued += len(records)
            self._cv.notify()

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued has been delivered or counted; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._qlen or any(s.inflight for s in self._runs.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
        return True

    def finish_run(self, run_id: str, timeout: float) -> dict[str, int]:
        """Wait (bounded) for the run's records to be sent; then its losses (what was left is `unsent`)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            st = self._runs.get(run_id)
            if st is None:
                return {}
            while st.queued or st.inflight:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(left)
            if st.queued:  # give up on what is still waiting: counted, and removed from the queue
                kept = collections.deque(item for item in self._q if item[0] != run_id)
                dropped = self._qlen - sum(len(r) for _, r in kept)
                self._q, self._qlen = kept, self._qlen - dropped
                st.unsent += st.queued
                st.queued = 0
            if st.inflight:  # the batch on the wire is abandoned for this run's accounting
                st.unsent += st.inflight
                st.inflight = 0
            del self._runs[run_id]
            return st.losses()

    def stats(self, run_id: str) -> dict[str, int]:
        with self._cv:
            st = self._runs.get(run_id)
            return {} if st is None else {"delivered": st.delivered, **st.losses()}

    def close(self, timeout: float = 5.0) -> None:
        self.flush(timeout)
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- exporter thread ---------------------------------------------------------------

    def _take(self) -> tuple[str, list[Any]] | None:
        with self._cv:
            while not self._q and not self._stop:
                self._cv.wait()
            if not self._q:
                return None
            run_id, recs = self._q[0]
            n = self.cfg.batch_max
            if len(recs) > n:
                self._q[0] = (run_id, recs[n:])
                recs = recs[:n]
            else:
                self._q.popleft()
            self._qlen -= len(recs)
            st = self._runs.get(run_id)
            if st is not None:
                st.queued -= len(recs)
                st.inflight += len(recs)
            return run_id, recs

    def _done(self, run_id: str, n: int, delivered: int, failed: int, rejected: int) -> None:
        with self._cv:
            st = self._runs.get(run_id)
            if st is not None and st.inflight >= n:
                st.inflight -= n
                st.delivered += delivered
                st.failed += failed
                st.rejected += rejected
            self._cv.notify_all()

    def _encode(self, recs: list[Any]) -> bytes:
        now = time.time_ns()
        out: list[bytes] = []
        for r in recs:
            data = r.data_json
            if isinstance(data, msgspec.Raw):  # a StoredRecord: decode by type, keep its exact JSON text
                out.append(fmt.log_record(r, r.data(), bytes(data), now))
            else:
                out.append(fmt.log_record(r, data, None, now))
        return fmt.export_request(self.resource, __version__, out)

    def _loop(self) -> None:
        poster = OtlpPoster(self.cfg.endpoint, self.cfg.timeout, self.cfg.headers)
        try:
            while True:
                item = self._take()
                if item is None:
                    return
                run_id, recs = item
                try:
                    body = self._encode(recs)
                except Exception as exc:  # a bug in encoding must not stop the exporter: counted
                    self.last_error = f"encode: {exc}"
                    self._done(run_id, len(recs), 0, len(recs), 0)
                    continue
                self._send(poster, run_id, recs, body)
        finally:
            poster.close()

    def _send(self, poster: OtlpPoster, run_id: str, recs: list[Any], body: bytes) -> None:
        delay = self.cfg.backoff
        for attempt in range(self.cfg.retries + 1):
            try:
                rejected = poster.post(body)
                self.requests += 1
                self._done(run_id, len(recs), len(recs) - rejected, 0, rejected)
                return
            except ExportError as exc:
                self.last_error = str(exc)
                if not exc.retry or attempt == self.cfg.retries:
                    break
                end = time.monotonic() + delay
                with self._cv:  # a backoff that close() can cut short (other wake-ups do not)
                    while not self._stop and (left := end - time.monotonic()) > 0:
                        self._cv.wait(left)
                    if self._stop:
                        break
                delay = min(delay * 2, 8.0)
        self._done(run_id, len(recs), 0, len(recs), 0)


class OtlpSink:
    """One run's OTLP sink in the fan-out (logira.sinks.base.Sink), over the daemon's exporter."""

    name = "otlp"  # also the key in meta.json export_losses

    def __init__(self, exporter: OtlpExporter, finish_wait: float) -> None:
        self.exporter = exporter
        self.finish_wait = finish_wait
        self.stats = SinkStats()
        self.run_id = ""
        self._closed = False

    async def open(self, meta: RunMeta) -> None:
        self.run_id = meta.run_id

    async def write_batch(self, records: Sequence[Record]) -> None:
        self.exporter.write_batch(self.run_id, list(records))  # a queue append: never waits for the network

    async def flush(self) -> None:
        return None  # delivery is the exporter thread's; the run's end waits for it in close()

    async def close(self, meta: RunMeta) -> None:
        if self._closed:
            return
        self._closed = True
        losses = await asyncio.to_thread(self.exporter.finish_run, self.run_id, self.finish_wait)
        if self.stats.failed:
            losses["failed"] = losses.get("failed", 0) + self.stats.failed
        if losses:
            meta.export_losses = {**meta.export_losses, self.name: losses}
