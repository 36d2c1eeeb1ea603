"""A local OTLP/HTTP logs receiver on 127.0.0.1 that parses every request with the official protobuf classes.

`ExportLogsServiceRequest` from `opentelemetry-proto`, via `google.protobuf.json_format.Parse`
without `ignore_unknown_fields`: a misspelt key, a wrong type (an int64 that is not a decimal
string or number, a bad enum) or bad JSON is a parse error, recorded in `errors` and answered 400,
and every test asserts `errors == []`. Modes: "ok", "refuse" (503 always), "reject" (200 with
partialSuccess rejecting one record per request), "slow" (sleeps past the client's timeout).
"""

from __future__ import annotations

import http.server
import threading
import time

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest


def parse_strict(body: bytes) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    json_format.Parse(body.decode("utf-8"), req, ignore_unknown_fields=False)
    return req


def attrs(kvs) -> dict:
    out = {}
    for kv in kvs:
        which = kv.value.WhichOneof("value")
        v = getattr(kv.value, which)
        if which == "array_value":
            v = [x.string_value for x in v.values]
        out[kv.key] = v
    return out


class Receiver:
    def __init__(self, mode: str = "ok", delay: float = 0.0):
        self.mode = mode
        self.delay = delay
        self.requests: list[ExportLogsServiceRequest] = []
        self.errors: list[str] = []
        self.content_types: set[str] = set()
        self.lock = threading.Lock()
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with recv.lock:
                    recv.content_types.add(self.headers.get("Content-Type", ""))
                if self.path != "/v1/logs":
                    recv.errors.append(f"path {self.path}")
                    return self._answer(404, b"{}")
                if recv.mode == "refuse":
                    return self._answer(503, b"{}")
                if recv.mode == "slow":
                    time.sleep(recv.delay)
                try:
                    req = parse_strict(body)
                except Exception as exc:
                    with recv.lock:
                        recv.errors.append(f"{type(exc).__name__}: {exc}")
                    return self._answer(400, b'{"message":"bad payload"}')
                with recv.lock:
                    recv.requests.append(req)
                if recv.mode == "reject":
                    return self._answer(200, b'{"partialSuccess":{"rejectedLogRecords":"1","errorMessage":"x"}}')
                return self._answer(200, b"{}")

            def _answer(self, code: int, data: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def records(self) -> list:
        with self.lock:
            return [lr for req in self.requests for rl in req.resource_logs for sl in rl.scope_logs
                    for lr in sl.log_records]  # fmt: skip

    def resources(self) -> list[dict]:
        with self.lock:
            return [attrs(rl.resource.attributes) for req in self.requests for rl in req.resource_logs]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
