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

# The encoder builds each LogRecord's JSON bytes from fixed fragments plus msgspec-encoded values:
# an exporter encodes every record of every run, and dicts of dicts cost several times more (and
# feed the garbage collector). The tests parse the result with the protobuf classes, strictly.
_enc = msgspec.json.Encoder()
_encode = _enc.encode


def _str(s: str) -> bytes:
    try:
        return _encode(s)
    except UnicodeEncodeError:  # undecodable bytes: the visible \xNN form, as in the JSONL text
        return _encode(display(s))


_SP: dict[str, bytes] = {}
_IP: dict[str, bytes] = {}


def _s(key: str, value: str) -> bytes:
    p = _SP.get(key)
    if p is None:
        p = _SP[key] = b'{"key":' + _encode(key) + b',"value":{"stringValue":'
    return p + _str(value) + b"}}"


def _i(key: str, value: int) -> bytes:
    p = _IP.get(key)
    if p is None:
        p = _IP[key] = b'{"key":' + _encode(key) + b',"value":{"intValue":"'
    return p + str(int(value)).encode() + b'"}}'


def _array(key: str, values: list[str]) -> bytes:
    items = b",".join(b'{"stringValue":' + _str(v) + b"}" for v in values)
    return b'{"key":' + _encode(key) + b',"value":{"arrayValue":{"values":[' + items + b"]}}}"


def resource(host: str, version: str) -> bytes:
    """The Resource object (JSON bytes): service.name, service.version, host.name."""
    return b'{"attributes":[' + b",".join(
        [_s("service.name", "logira"), _s("service.version", version), _s("host.name", host)]) + b"]}"  # fmt: skip


KERNEL_TYPES = ("exec", "file", "net")  # the record types that carry the syscall's errno


def log_record(rec: Any, data: Any, data_json: bytes | str | None = None, observed_ns: int | None = None) -> bytes:
    """One LogRecord (JSON bytes) from an envelope (`Record`/`StoredRecord`-like) and its decoded payload."""
    attrs = [_s("logira.run_id", rec.run_id), _i("logira.seq", rec.seq), _s("logira.type", rec.type),
             _i("process.pid", rec.pid), _i("process.parent_pid", rec.ppid), _i("user.id", rec.uid)]  # fmt: skip
    sev_text, sev_num = b'"INFO"', 9
    t = rec.type
    op = getattr(data, "op", "")
    if op:
        attrs.append(_s("logira.op", op))
    if t == "exec":
        attrs.append(_s("process.executable.path", data.filename))
        attrs.append(_array("process.command_args", data.argv))
    elif t == "file":
        attrs.append(_s("file.path", data.path))
        if data.path2:
            attrs.append(_s("file.path2", data.path2))
    elif t == "net":
        if data.dst_ip:
            attrs.append(_s("server.address", data.dst_ip))
            attrs.append(_i("server.port", data.dst_port))
        if data.unix_path:
            attrs.append(_s("logira.unix_path", data.unix_path))
        if data.dns_qname:
            attrs.append(_s("dns.question.name", data.dns_qname))
    elif t == "detection":
        attrs.append(_s("logira.rule_id", data.rule_id))
        attrs.append(_s("logira.severity", data.severity))
        if data.related_event_seq:
            attrs.append(_i("logira.related_seq", data.related_event_seq))
        sev_text, sev_num = _str(data.severity.upper()), SEVERITY_NUMBER.get(data.severity, 9)
    if t in KERNEL_TYPES and data.errno:  # last of the type's own attributes: the kernel refused it
        attrs.append(_i("logira.errno", data.errno))
    exe = getattr(data, "exe", "")
    if exe and t != "exec":
        attrs.append(_s("process.executable.path", exe))
    call = getattr(data, "tool_call_id", "") or getattr(rec, "tool_call_id", "")
    if call:
        attrs.append(_s("logira.tool_call_id", call))
    if data_json is None:
        try:
            data_json = _encode(data)
        except UnicodeEncodeError:
            data_json = encode_display(data)
    if isinstance(data_json, bytes):
        data_json = data_json.decode("utf-8", "backslashreplace")
    attrs.append(_s("logira.data", data_json))
    return (b'{"timeUnixNano":"' + str(rec.ts).encode() + b'","observedTimeUnixNano":"'
            + str(observed_ns or time.time_ns()).encode() + b'","severityNumber":' + str(sev_num).encode()
            + b',"severityText":' + sev_text + b',"body":{"stringValue":' + _str(rec.summary)
            + b'},"attributes":[' + b",".join(attrs) + b"]}")  # fmt: skip


def export_request(res: bytes, version: str, records: Iterable[bytes]) -> bytes:
    """An ExportLogsServiceRequest (JSON bytes) holding `records` under one resource and scope."""
    return (b'{"resourceLogs":[{"resource":' + res + b',"scopeLogs":[{"scope":{"name":' + _encode(SCOPE_NAME)
            + b',"version":' + _str(version) + b'},"logRecords":[' + b",".join(records) + b"]}]}]}")  # fmt: skip
