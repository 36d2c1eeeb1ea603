"""Message templates: `{field}` substitution of event fields, nothing else.

No expressions, attribute access, indexing or format specs: a placeholder is `{name}` with
`name` one of the fields of the rule's event type (checked at load time); `{{` and `}}` are
literal braces. Each value is cut to FIELD_MAX characters, control characters are escaped,
and the whole message is cut to MESSAGE_MAX characters, so a hostile path or argv cannot
blow up a detection.
"""

from __future__ import annotations

import re

FIELD_MAX = 160
MESSAGE_MAX = 300

COMMON_FIELDS = ("pid", "ppid", "uid", "exe", "comm", "type")
FIELDS: dict[str, tuple[str, ...]] = {
    "exec": (*COMMON_FIELDS, "filename", "program", "argv", "cmdline", "cwd"),
    "file": (*COMMON_FIELDS, "op", "path", "path2", "mode", "errno", "path_literal", "same_file_as", "unverified"),
    "net": (*COMMON_FIELDS, "op", "proto", "family", "dst_ip", "dst_port", "dst", "src_ip", "src_port",
            "unix_path", "dns_qname", "bytes", "errno", "dns_qnames", "peer_mismatch", "claimed_dst_ip",
            "claimed_dst_port", "outcome", "bytes_received", "run_dst_bytes"),
    "proc": (*COMMON_FIELDS, "op", "syscall_nr", "namespaces", "source", "target", "fstype", "errno"),
    # the consumer's exec fields, the producer's exe/cmdline, how the code flowed, the file or pipe
    "flow": (*COMMON_FIELDS, "filename", "program", "argv", "cmdline", "cwd", "via", "source_exe",
             "source_cmdline", "path", "pipe"),
}  # fmt: skip

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_CTRL = re.compile(r"[\x00-\x1f\x7f]")


class TemplateError(ValueError):
    pass


class Template:
    """A parsed template: literal strings and field names, alternating."""

    __slots__ = ("fields", "parts")

    def __init__(self, source: str, allowed: tuple[str, ...] | set[str]) -> None:
        parts: list[tuple[bool, str]] = []  # (is_field, text)
        pos = 0
        for m in _TOKEN.finditer(source):
            if m.start() > pos:
                parts.append((False, source[pos : m.start()]))
            tok = m.group(0)
            if tok in ("{{", "}}"):
                parts.append((False, tok[0]))
            elif tok in ("{", "}"):
                raise TemplateError(f"unbalanced {tok!r} in message (write {tok}{tok} for a literal brace)")
            else:
                name = m.group(1)
                if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
                    raise TemplateError(f"message placeholder {{{name}}} is not a plain field name")
                if name not in allowed:
                    raise TemplateError(
                        f"message placeholder {{{name}}} is not a field of this event type "
                        f"(one of: {', '.join(sorted(allowed))})"
                    )
                parts.append((True, name))
            pos = m.end()
        if pos < len(source):
            parts.append((False, source[pos:]))
        self.parts = parts
        self.fields = tuple(sorted({t for f, t in parts if f}))

    def render(self, values: dict[str, object]) -> str:
        out: list[str] = []
        for is_field, text in self.parts:
            if not is_field:
                out.append(text)
                continue
            v = values.get(text, "")
            s = v if isinstance(v, str) else str(v)
            if len(s) > FIELD_MAX:
                s = s[: FIELD_MAX - 1] + "…"
            if _CTRL.search(s):
                s = _CTRL.sub(lambda c: f"\\x{ord(c.group(0)):02x}", s)
            out.append(s)
        msg = "".join(out).strip()
        if len(msg) > MESSAGE_MAX:
            msg = msg[: MESSAGE_MAX - 1] + "…"
        return msg
