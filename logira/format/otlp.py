"""OTLP logs, JSON encoding: a stored record as an OpenTelemetry LogRecord (one format, two users).

Used by the daemon's streaming sink (sinks/otlp.py) and by `logira export --format otlp-json`.
The shape follows the OTLP spec's "JSON Protobuf Encoding" of `ExportLogsServiceRequest`:
lowerCamelCase keys, 64-bit integers as decimal strings, enums as integers. It is checked in the
tests by strict parsing with the official protobuf definitions (`opentelemetry-proto`).

Attributes of every record: `logira.run_id`, `logira.seq`, `logira.type`, `logira.op`,
`process.pid`, `process.parent_pid`, `user.id`, plus by type `process.executable.path`,
`process.command_args`, `file.path`, `file.path2`, `server.address`/`server.port`, `dns.question.name`,
`logira.rule_id`, `logira.severity`, `logira.related_seq`, and `logira.tool_call_id` when the
record carries one. The record's `data_json` is in `logira.data` (a JSON string), the summary is
the body. Resource: `service.name` = logira, `service.version`, `host.name`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import msgspec

from logira.format.textsafe import display, encode_display

# OTel SeverityNumber: INFO 9, WARN 13, WARN2 14, ERROR 17, FATAL 21.
SEVERITY_NUMBER = {"info": 9, "low": 13, "medium": 14, "high": 17, "critical": 21}
SCOPE_NAME = "logira"

_enc = msgspec.json.Encoder()


def _s(key: str, value: str) -> dict:
    return {"key": key, "value": {"stringValue": value}}


def _i(key: str, value: int) -> dict:
    return {"key": key, "value": {"intValue": str(int(value))}}


def resource(host: str, version: str) -> dict:
    return {"attributes": [_s("service.name", "logira"), _s("service.version", version), _s("host.name", host)]}


def log_record(rec: Any, data: Any, data_json: bytes | str | None = None, observed_ns: int | None = None) -> dict:
    """One LogRecord from an envelope (`Record`/`StoredRecord`-like) and its decoded payload."""
    attrs = [_s("logira.run_id", rec.run_id), _i("logira.seq", rec.seq), _s("logira.type", rec.type),
             _i("process.pid", rec.pid), _i("process.parent_pid", rec.ppid), _i("user.id", rec.uid)]  # fmt: skip
    sev_text, sev_num = "INFO", 9
    t = rec.type
    op = getattr(data, "op", "")
    if op:
        attrs.append(_s("logira.op", op))
    if t == "exec":
        attrs.append(_s("process.executable.path", data.filename))
        attrs.append({"key": "process.command_args",
                      "value": {"arrayValue": {"values": [{"stringValue": a} for a in data.argv]}}})  # fmt: skip
        if data.errno:
            attrs.append(_i("logira.errno", data.errno))
    elif t == "file":
        attrs.append(_s("file.path", data.path))
        if data.path2:
            attrs.append(_s("file.path2", data.path2))
        if data.errno:
            attrs.append(_i("logira.errno", data.errno))
    elif t == "net":
        if data.dst_ip:
            attrs.append(_s("server.address", data.dst_ip))
            attrs.append(_i("server.port", data.dst_port))
        if data.unix_path:
            attrs.append(_s("logira.unix_path", data.unix_path))
        if data.dns_qname:
            attrs.append(_s("dns.question.name", data.dns_qname))
        if data.errno:
            attrs.append(_i("logira.errno", data.errno))
    elif t == "detection":
        attrs.append(_s("logira.rule_id", data.rule_id))
        attrs.append(_s("logira.severity", data.severity))
        if data.related_event_seq:
            attrs.append(_i("logira.related_seq", data.related_event_seq))
        sev_text, sev_num = data.severity.upper(), SEVERITY_NUMBER.get(data.severity, 9)
    exe = getattr(data, "exe", "")
    if exe and t != "exec":
        attrs.append(_s("process.executable.path", exe))
    call = getattr(data, "tool_call_id", "") or getattr(rec, "tool_call_id", "")
    if call:
        attrs.append(_s("logira.tool_call_id", call))
    if data_json is None:
        try:
            data_json = _enc.encode(data)
        except UnicodeEncodeError:  # undecodable bytes: the visible \xNN form, as in the JSONL text
            data_json = encode_display(data)
    attrs.append(_s("logira.data", data_json.decode("utf-8", "backslashreplace") if isinstance(data_json, bytes)
                    else data_json))  # fmt: skip
    return {
        "timeUnixNano": str(rec.ts),
        "observedTimeUnixNano": str(observed_ns or time.time_ns()),
        "severityNumber": sev_num,
        "severityText": sev_text,
        "body": {"stringValue": rec.summary},
        "attributes": attrs,
    }


def export_request(res: dict, version: str, records: Iterable[dict]) -> dict:
    """An ExportLogsServiceRequest holding `records` (LogRecord dicts) under one resource and scope."""
    return {"resourceLogs": [{"resource": res,
                              "scopeLogs": [{"scope": {"name": SCOPE_NAME, "version": version},
                                             "logRecords": list(records)}]}]}  # fmt: skip


def _display_safe(obj: Any) -> Any:
    if isinstance(obj, str):
        return display(obj)
    if isinstance(obj, list):
        return [_display_safe(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _display_safe(v) for k, v in obj.items()}
    return obj


def encode(doc: dict) -> bytes:
    """Compact JSON bytes; strings holding undecodable bytes are written in their visible \\xNN form."""
    try:
        return _enc.encode(doc)
    except UnicodeEncodeError:
        return _enc.encode(_display_safe(doc))
