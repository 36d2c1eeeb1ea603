"""The agent's own session log, read by root at finalize: Claude Code, Codex and Gemini CLI transcripts.

These are user-owned files named by claims (a hook's `transcript_path`) or by what the kernel saw
the agent write. So: only paths under the run user's home in the agents' own log dirs; every
directory opened with O_NOFOLLOW from `/` (logira/storage/safefs.py); the file opened with
O_NOFOLLOW, required to be a regular file owned by the user, and read up to MAX_BYTES (a longer
file is read up to the cap and counted as truncated). Lines that do not parse are counted; nothing
here fails the run. The formats are internal to each agent and change between versions, so every
field is optional.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from logira.agents.hookmsg import command_of, file_path_of
from logira.agents.join import Declared
from logira.storage.safefs import UnsafePathError, open_user_dir

MAX_BYTES = 64 << 20  # per transcript file
MAX_FILES = 32  # per run
MAX_LINE = 4 << 20  # a longer line is skipped (counted)

_CLAUDE = re.compile(r"/\.claude/projects/[^/]+/(?:[^/]+/subagents/)?[^/]+\.jsonl")
_CODEX = re.compile(r"/\.codex/sessions/\d{4}/\d{2}/\d{2}/rollout-[^/]+\.jsonl")
_GEMINI = re.compile(r"/\.gemini/tmp/[^/]+/chats/session-[^/]+\.jsonl")


@dataclass
class TranscriptStats:
    files: int = 0
    lines: int = 0
    parse_errors: int = 0
    refused: int = 0  # not opened: outside the allowed dirs, symlink, not the user's, not a file
    truncated: int = 0  # longer than MAX_BYTES: read up to the cap
    tool_calls: int = 0
    reasons: list[str] = field(default_factory=list)  # one line per refused/truncated file (first few)

    def note(self, why: str) -> None:
        if len(self.reasons) < 8:
            self.reasons.append(why[:300])

    def as_dict(self) -> dict[str, int]:
        return {"transcript_files": self.files, "transcript_lines": self.lines,
                "transcript_parse_errors": self.parse_errors, "transcripts_refused": self.refused,
                "transcripts_truncated": self.truncated, "transcript_calls": self.tool_calls}  # fmt: skip


def kind_of(path: str, home: str) -> str:
    """claude | codex | gemini when `path` is an allowed transcript location under `home`, else ""."""
    home = home.rstrip("/")
    if not home or not path.startswith(home + "/") or "/../" in path or "/./" in path:
        return ""
    rest = path[len(home) :]
    if _CLAUDE.fullmatch(rest):
        return "claude"
    if _CODEX.fullmatch(rest):
        return "codex"
    if _GEMINI.fullmatch(rest):
        return "gemini"
    return ""


def read_user_file(path: str, uid: int, max_bytes: int = MAX_BYTES) -> tuple[bytes, bool]:
    """(content up to max_bytes, truncated). Raises UnsafePathError (one line) when refused."""
    parent, name = path.rsplit("/", 1)
    dfd = open_user_dir(parent, uid)
    try:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
        except OSError as exc:
            raise UnsafePathError(f"{path}: cannot open ({exc.strerror}; symlinks are refused)") from None
    finally:
        os.close(dfd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(f"{path} is not a regular file")
        if st.st_uid != uid:
            raise UnsafePathError(f"{path} is not owned by uid {uid}")
        chunks, n = [], 0
        while n < max_bytes:
            b = os.read(fd, min(1 << 20, max_bytes - n))
            if not b:
                break
            chunks.append(b)
            n += len(b)
        truncated = n >= max_bytes and os.fstat(fd).st_size > max_bytes
        return b"".join(chunks), truncated
    finally:
        os.close(fd)


def _ts(v: object) -> int:
    if not isinstance(v, str):
        return 0
    try:
        return int(datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() * 1e9)
    except ValueError:
        return 0


_dec = msgspec.json.Decoder()


def _lines(data: bytes, stats: TranscriptStats):
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        stats.lines += 1
        if len(line) > MAX_LINE:
            stats.parse_errors += 1
            continue
        try:
            obj = _dec.decode(line)
        except msgspec.DecodeError:
            stats.parse_errors += 1  # e.g. the last line cut by the size cap, or a corrupted line
            continue
        if not isinstance(obj, dict):
            stats.parse_errors += 1
            continue
        yield obj


def parse_claude(data: bytes, stats: TranscriptStats) -> list[Declared]:
    """tool_use blocks (assistant lines) joined with their tool_result (user lines)."""
    calls: dict[str, Declared] = {}
    for obj in _lines(data, stats):
        msg = obj.get("message")
        content = msg.get("content") if isinstance(msg, dict) else None
        if not isinstance(content, list):
            continue
        ts = _ts(obj.get("timestamp"))
        sess = obj.get("sessionId") if isinstance(obj.get("sessionId"), str) else ""
        sub = obj.get("agentId") if obj.get("isSidechain") and isinstance(obj.get("agentId"), str) else ""
        for block in content:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_use" and isinstance(block.get("id"), str):
                inp = block.get("input")
                d = Declared(block["id"][:256], "claude", tool=str(block.get("name", ""))[:256],
                             command=command_of(inp), file_path=file_path_of(inp),
                             description=str(inp.get("description", ""))[:4096] if isinstance(inp, dict) else "",
                             start_ts=ts, session_id=sess[:256], subagent=sub[:256])  # fmt: skip
                calls.setdefault(d.call_id, d)
            elif block.get("type") == "tool_result" and isinstance(block.get("tool_use_id"), str):
                done = calls.get(block["tool_use_id"])
                if done is not None and not done.end_ts:
                    done.end_ts = ts
                    done.status = "error" if block.get("is_error") is True else "ok"
    stats.tool_calls += len(calls)
    return list(calls.values())


def parse_codex(data: bytes, stats: TranscriptStats) -> list[Declared]:
    """response_item function_call (+ custom_tool_call) joined with exec_command_end / *_output."""
    calls: dict[str, Declared] = {}
    sess = ""
    for obj in _lines(data, stats):
        payload = obj.get("payload")
        if not isinstance(payload, dict):
            continue
        ts = _ts(obj.get("timestamp"))
        kind, ptype = obj.get("type"), payload.get("type")
        if kind == "session_meta" and isinstance(payload.get("id"), str):
            sess = payload["id"][:256]
        elif kind == "response_item" and ptype in ("function_call", "custom_tool_call", "local_shell_call"):
            cid = payload.get("call_id")
            if not isinstance(cid, str):
                continue
            args = payload.get("arguments", payload.get("input", payload.get("action")))
            if isinstance(args, str):
                with contextlib.suppress(msgspec.DecodeError):
                    args = _dec.decode(args)
            d = Declared(cid[:256], "codex", tool=str(payload.get("name", ptype))[:256], command=command_of(args),
                         file_path=file_path_of(args), start_ts=ts, session_id=sess)  # fmt: skip
            calls.setdefault(d.call_id, d)
        elif kind == "event_msg" and ptype == "item_completed":
            # Codex 0.17x: the end of a command is an item_completed CommandExecution (no exec_command_end)
            item = payload.get("item")
            if not isinstance(item, dict) or item.get("type") != "CommandExecution":
                continue
            ended = calls.get(str(item.get("id")))
            if ended is None:
                continue
            done = payload.get("completed_at_ms")
            ended.end_ts = done * 1_000_000 if isinstance(done, int) and done > 0 else ts or ended.end_ts
            code = item.get("exit_code")
            ended.status = "ok" if code == 0 and item.get("status") != "failed" else "error"
            if not ended.command:
                ended.command = command_of({"command": item.get("command")})
        elif (kind == "event_msg" and ptype == "exec_command_end") or (
            kind == "response_item" and ptype in ("function_call_output", "custom_tool_call_output")
        ):
            out = calls.get(str(payload.get("call_id")))
            if out is None:
                continue
            if ptype == "exec_command_end":
                code = payload.get("exit_code")
                out.end_ts = ts or out.end_ts
                out.status = "ok" if code == 0 else "error"
            elif not out.end_ts:
                out.end_ts, out.status = ts, out.status or "ok"
    stats.tool_calls += len(calls)
    return list(calls.values())


_GEMINI_STATUS = {"success": "ok", "error": "error", "cancelled": "interrupted"}


def parse_gemini(data: bytes, stats: TranscriptStats) -> list[Declared]:
    """Gemini CLI 0.6x chats: `gemini` messages carrying `toolCalls` (a message is rewritten as the
    turn goes on, so the last copy of a call wins). Start = the model turn's time, end = the call's."""
    calls: dict[str, Declared] = {}
    sess = ""
    for obj in _lines(data, stats):
        if not sess and isinstance(obj.get("sessionId"), str):
            sess = obj["sessionId"][:256]
        tool_calls = obj.get("toolCalls")
        if obj.get("type") != "gemini" or not isinstance(tool_calls, list):
            continue
        turn_ts = _ts(obj.get("timestamp"))
        for tc in tool_calls:
            if not isinstance(tc, dict) or not isinstance(tc.get("id"), str):
                continue
            args = tc.get("args")
            status = _GEMINI_STATUS.get(str(tc.get("status")), "")
            end = _ts(tc.get("timestamp")) if status else 0
            d = Declared(tc["id"][:256], "gemini", tool=str(tc.get("name", ""))[:256], command=command_of(args),
                         file_path=file_path_of(args), start_ts=turn_ts or end,
                         description=str(args.get("description", ""))[:4096] if isinstance(args, dict) else "",
                         end_ts=end, status=status, session_id=sess)  # fmt: skip
            calls[d.call_id] = d
    stats.tool_calls += len(calls)
    return list(calls.values())


_PARSERS = {"claude": parse_claude, "codex": parse_codex, "gemini": parse_gemini}


def read_transcripts(paths: list[str], home: str, uid: int, stats: TranscriptStats,
                     max_bytes: int = MAX_BYTES) -> list[Declared]:  # fmt: skip
    """The declared tool calls of every allowed transcript among `paths` (deduplicated, bounded)."""
    out: list[Declared] = []
    seen: set[str] = set()
    for path in paths:
        if path in seen:
            continue
        seen.add(path)
        kind = kind_of(path, home)
        if not kind:
            stats.refused += 1
            stats.note(f"{path}: not an agent transcript location under {home}")
            continue
        if stats.files >= MAX_FILES:
            stats.refused += 1
            stats.note(f"{path}: more than {MAX_FILES} transcripts in one run")
            continue
        try:
            data, truncated = read_user_file(path, uid, max_bytes)
        except (UnsafePathError, OSError) as exc:
            stats.refused += 1
            stats.note(str(exc))
            continue
        stats.files += 1
        if truncated:
            stats.truncated += 1
            stats.note(f"{path}: longer than {max_bytes} bytes; read up to the cap")
        out.extend(_PARSERS[kind](data, stats))
    return out
