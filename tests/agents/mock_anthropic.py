"""A scripted Anthropic Messages API on 127.0.0.1 that drives the real Claude Code CLI offline.

Claude Code (ANTHROPIC_BASE_URL=mock.url) POSTs /v1/messages?beta=true with `stream: true`. For step k of
the script (k = the tool-calling turns already in the conversation) the mock streams:
message_start, per tool call content_block_start (tool_use) / content_block_delta (input_json_delta) /
content_block_stop, message_delta (stop_reason tool_use), message_stop. Once every step has its
tool_result, it answers with a text block and `end_turn`. Requests without tools (the CLI's side
queries) get a short text. Every request is kept in `requests`.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from mock_common import MockServer, Recorded, Script, ToolCall, sse

MODEL = "claude-mock-1"


class ClaudeScript(Script):
    def new_id(self, step: int, index: int) -> str:
        # the real ids are "toolu_01" + 22 base62 characters
        return f"toolu_01mock{step:02d}{index}{secrets.token_hex(5)}"


def bash(command: str, description: str = "run a command", **extra: Any) -> ToolCall:
    return ToolCall("Bash", {"command": command, "description": description, **extra})


def tool_use_turns(messages: list[dict[str, Any]]) -> int:
    return sum(
        1
        for m in messages
        if m.get("role") == "assistant"
        and isinstance(m.get("content"), list)
        and any(b.get("type") == "tool_use" for b in m["content"] if isinstance(b, dict))
    )


def tool_results(messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """tool_use_id -> the tool_result block the CLI sent back."""
    out: dict[str, dict[str, Any]] = {}
    for m in messages:
        if m.get("role") == "user" and isinstance(m.get("content"), list):
            for b in m["content"]:
                if isinstance(b, dict) and b.get("type") == "tool_result":
                    out[b.get("tool_use_id", "")] = b
    return out


def result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(c.get("text", "") for c in content if isinstance(c, dict))
    return ""


class MockAnthropic(MockServer):
    def answer(self, rec: Recorded) -> tuple[int, str, list[bytes]]:
        body = rec.body if isinstance(rec.body, dict) else {}
        if not rec.path.startswith("/v1/messages") or rec.path.startswith("/v1/messages/count_tokens"):
            if rec.path.startswith("/v1/messages/count_tokens"):
                return 200, "application/json", [b'{"input_tokens": 100}']
            return 404, "application/json", [b'{"error": {"type": "not_found_error", "message": "mock"}}']
        messages = body.get("messages") or []
        script = self.script_for(json.dumps(messages)) if body.get("tools") else None
        if script is None:
            calls, text = [], "ok"
        else:
            k = tool_use_turns(messages)
            calls, text = (script.steps[k], "") if k < len(script.steps) else ([], script.final_text)
        if body.get("stream"):
            return 200, "text/event-stream", stream(calls, text)
        return 200, "application/json", [json.dumps(message(calls, text)).encode()]

    def main_requests(self) -> list[dict[str, Any]]:
        """The agent-loop requests (those offering tools), in arrival order."""
        return [
            r.body for r in self.posts("/v1/messages") if isinstance(r.body, dict) and r.body.get("tools")
        ]

    def results(self) -> dict[str, dict[str, Any]]:
        """Every tool_result the CLI sent, by tool_use_id."""
        out: dict[str, dict[str, Any]] = {}
        for body in self.main_requests():
            out.update(tool_results(body.get("messages") or []))
        return out


def message(calls: list[ToolCall], text: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": c.input} for c in calls
    ]
    if text:
        content.append({"type": "text", "text": text})
    return {
        "id": f"msg_mock{secrets.token_hex(6)}",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": content,
        "stop_reason": "tool_use" if calls else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 100, "output_tokens": 20},
    }


def stream(calls: list[ToolCall], text: str) -> list[bytes]:
    start = message([], "")
    start["stop_reason"] = None
    start["usage"] = {"input_tokens": 100, "output_tokens": 1}
    out = [sse("message_start", {"type": "message_start", "message": start})]
    index = 0
    if text:
        out += [
            sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": text},
                },
            ),
            sse("content_block_stop", {"type": "content_block_stop", "index": index}),
        ]
        index += 1
    for c in calls:
        block = {"type": "tool_use", "id": c.id, "name": c.name, "input": {}}
        delta = {"type": "input_json_delta", "partial_json": json.dumps(c.input)}
        out += [
            sse(
                "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}
            ),
            sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}),
            sse("content_block_stop", {"type": "content_block_stop", "index": index}),
        ]
        index += 1
    out += [
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use" if calls else "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 20},
            },
        ),
        sse("message_stop", {"type": "message_stop"}),
    ]
    return out
