"""A scripted OpenAI Responses API on 127.0.0.1 that drives the real Codex CLI offline.

Codex (config.toml: a model provider whose base_url is mock.url + "/v1", wire_api "responses") POSTs
/v1/responses with `stream: true`. For step k of the script (k = the model turns with function calls
already in `input`) the mock streams `response.created`, per call `response.output_item.added` and
`response.output_item.done` with a `function_call` item (`exec_command`, `arguments` a JSON string holding
`cmd`), then `response.completed`. Once every step has its `function_call_output`, it answers with a
`message` item of `output_text`. Every request is kept in `requests`.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from mock_common import MockServer, Recorded, Script, ToolCall, sse

MODEL = "gpt-mock-1"


class CodexScript(Script):
    def new_id(self, step: int, index: int) -> str:
        return f"call_mock{step:02d}{index}{secrets.token_hex(6)}"


def exec_command(cmd: str, **extra: Any) -> ToolCall:
    return ToolCall("exec_command", {"cmd": cmd, **extra})


def function_call_turns(items: list[dict[str, Any]]) -> int:
    """Model turns already in the conversation: runs of consecutive function_call items count once."""
    turns, prev = 0, False
    for item in items:
        is_call = isinstance(item, dict) and item.get("type") == "function_call"
        if is_call and not prev:
            turns += 1
        prev = is_call or (prev and isinstance(item, dict) and item.get("type") == "reasoning")
    return turns


def function_outputs(items: list[dict[str, Any]]) -> dict[str, Any]:
    """call_id -> the output Codex sent back for it."""
    return {
        i.get("call_id", ""): i.get("output")
        for i in items
        if isinstance(i, dict) and i.get("type") == "function_call_output"
    }


class MockOpenAI(MockServer):
    def answer(self, rec: Recorded) -> tuple[int, str, list[bytes]]:
        body = rec.body if isinstance(rec.body, dict) else {}
        if not rec.path.startswith("/v1/responses"):
            return 404, "application/json", [b'{"error": {"message": "mock: no such endpoint"}}']
        items = body.get("input") if isinstance(body.get("input"), list) else []
        script = self.script_for(json.dumps(items))
        if script is None:
            calls, text = [], "ok"
        else:
            k = function_call_turns(items)
            calls, text = (script.steps[k], "") if k < len(script.steps) else ([], script.final_text)
        return 200, "text/event-stream", stream(calls, text)

    def main_requests(self) -> list[dict[str, Any]]:
        return [r.body for r in self.posts("/v1/responses") if isinstance(r.body, dict)]

    def results(self) -> dict[str, Any]:
        """Every function_call_output Codex sent, by call_id."""
        out: dict[str, Any] = {}
        for body in self.main_requests():
            items = body.get("input") if isinstance(body.get("input"), list) else []
            out.update(function_outputs(items))
        return out


def stream(calls: list[ToolCall], text: str) -> list[bytes]:
    rid = f"resp_mock{secrets.token_hex(8)}"
    base = {"id": rid, "object": "response", "model": MODEL, "output": []}
    out = [
        sse("response.created", {"type": "response.created", "response": {**base, "status": "in_progress"}})
    ]
    items: list[dict[str, Any]] = []
    for c in calls:
        items.append(
            {
                "type": "function_call",
                "id": f"fc_{c.id}",
                "call_id": c.id,
                "name": c.name,
                "arguments": json.dumps(c.input),
                "status": "completed",
            }
        )
    if text:
        items.append(
            {
                "type": "message",
                "id": f"msg_mock{secrets.token_hex(6)}",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        )
    for index, item in enumerate(items):
        out.append(
            sse(
                "response.output_item.added",
                {"type": "response.output_item.added", "output_index": index, "item": item},
            )
        )
        out.append(
            sse(
                "response.output_item.done",
                {"type": "response.output_item.done", "output_index": index, "item": item},
            )
        )
    usage = {
        "input_tokens": 100,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 20,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 120,
    }
    done = {**base, "status": "completed", "output": items, "usage": usage}
    out.append(sse("response.completed", {"type": "response.completed", "response": done}))
    return out
