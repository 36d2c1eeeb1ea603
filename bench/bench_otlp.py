"""The OTLP exporter under 100 k records/s offered: delivered, shed (counted), and what the caller pays.

A local receiver on 127.0.0.1 answers 200 to every POST /v1/logs (it reads the body, does not parse
it, so the exporter is measured). Batches of 4 096 real Records are offered at --rate for
--seconds through `write_batch` (the call the run's sink makes on the daemon's event loop); then
`finish_run` waits (bounded) for the rest. Printed: records/s delivered, shed/unsent counts
(every record accounted for), and the cost of one `write_batch` call (the only part on the loop).

    .venv/bin/python bench/bench_otlp.py [--rate 100000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import http.server
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from timing import load_note  # noqa: E402

from logira.model.record import FileData, NetData, Record  # noqa: E402
from logira.sinks.otlp import OtlpConfig, OtlpExporter  # noqa: E402


class _Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received = 0

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        _Sink.received += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


def _batch(run_id: str, start: int, n: int) -> list[Record]:
    out = []
    for i in range(start, start + n):
        if i % 3:
            d = FileData(op="modify", path=f"/home/u/proj/src/mod{i % 200}/f{i % 97}.py", exe="/usr/bin/python3")
            out.append(Record(run_id=run_id, seq=i, ts=1_767_000_000_000_000_000 + i, type="file", pid=1000 + i % 50,
                              ppid=1000, uid=1000, summary=f"file modify {d.path}", data_json=d))  # fmt: skip
        else:
            d = NetData(op="connect", proto="tcp", family="inet", dst_ip="10.0.1.8", dst_port=443, exe="/usr/bin/curl")
            out.append(Record(run_id=run_id, seq=i, ts=1_767_000_000_000_000_000 + i, type="net", pid=1000, ppid=1,
                              uid=1000, summary="net connect tcp 10.0.1.8:443", data_json=d))  # fmt: skip
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--batch", type=int, default=4096)
    a = ap.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    exp = OtlpExporter(OtlpConfig(endpoint=f"http://127.0.0.1:{srv.server_address[1]}", batch_max=2048,
                                  queue_max=100_000), host="bench")  # fmt: skip
    exp.start()
    run_id = "20260101-000000-bench"
    pool = [_batch(run_id, k * a.batch + 1, a.batch) for k in range(8)]  # built before: only the exporter is timed
    offered, costs = 0, []
    t0 = time.perf_counter()
    k = 0
    while (elapsed := time.perf_counter() - t0) < a.seconds:
        due = int(elapsed * a.rate)
        while offered < due:
            b = pool[k % len(pool)]
            k += 1
            c = time.perf_counter()
            exp.write_batch(run_id, b)
            costs.append(time.perf_counter() - c)
            offered += len(b)
        time.sleep(0.002)
    t_offer = time.perf_counter() - t0
    stats = exp.stats(run_id)
    losses = exp.finish_run(run_id, timeout=10)
    t_all = time.perf_counter() - t0
    exp.close()
    srv.shutdown()
    lost = sum(losses.values())
    delivered = offered - lost
    print(f"offered {offered} records at {offered / t_offer:,.0f}/s for {t_offer:.1f} s; delivered {delivered} "
          f"({delivered / t_all:,.0f}/s over {t_all:.1f} s incl. the final wait), losses {losses or 'none'}; "
          f"accounted {delivered + lost} = offered {offered}")
    print(f"write_batch (on the caller's loop) per {a.batch}-record batch: median {statistics.median(costs) * 1e6:.0f} µs, "
          f"max {max(costs) * 1e6:.0f} µs ({len(costs)} calls); {_Sink.received} requests; "
          f"delivered during the offer window: {stats.get('delivered', 0)}")
    print(load_note())
    return 0


if __name__ == "__main__":
    sys.exit(main())
