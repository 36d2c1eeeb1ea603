"""A scripted Gemini API (generativelanguage v1beta) on 127.0.0.1 that drives the real Gemini CLI offline.

Gemini CLI (GOOGLE_GEMINI_BASE_URL=mock.url, GEMINI_API_KEY set, `-m <model>` so it does not route
through its classifier model) POSTs /v1beta/models/<model>:streamGenerateContent?alt=sse. For step k of
the script (k = the model turns with functionCall parts already in `contents`) the mock streams one
`data:` event whose candidate holds the step's functionCall parts (`run_shell_command` with
`{command, description}`); once every step has its functionResponse, a text part. Every request is
kept in `requests`.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from mock_common import MockServer, Recorded, Script, ToolCall

MODEL = "gemini-2.5-pro"


class GeminiScript(Script):
    def new_id(self, step: int, index: int) -> str:
        return f"gemcall{step:02d}{index}{secrets.token_hex(5)}"


def shell(command: str, description: str = "run a command") -> ToolCall:
    return ToolCall("run_shell_command", {"command": command, "description": description})


def call_turns(contents: list[dict[str, Any]]) -> int:
    return sum(
        1
        for c in contents
        if isinstance(c, dict)
        and c.get("role") == "model"
        and any(isinstance(p, dict) and "functionCall" in p for p in c.get("parts") or [])
    )


def function_responses(contents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every functionResponse part the CLI sent back, in order."""
    return [
        p["functionResponse"]
        for c in contents
        if isinstance(c, dict)
        for p in c.get("parts") or []
        if isinstance(p, dict) and "functionResponse" in p
    ]


class MockGemini(MockServer):
    def answer(self, rec: Recorded) -> tuple[int, str, list[bytes]]:
        body = rec.body if isinstance(rec.body, dict) else {}
        if "GenerateContent" not in rec.path and "generateContent" not in rec.path:
            return 404, "application/json", [b'{"error": {"code": 404, "message": "mock: no such endpoint"}}']
        contents = body.get("contents") or []
        script = self.script_for(json.dumps(contents)) if body.get("tools") else None
        if script is None:
            calls, text = [], "ok"
        else:
            k = call_turns(contents)
            calls, text = (script.steps[k], "") if k < len(script.steps) else ([], script.final_text)
        parts: list[dict[str, Any]] = [
            {"functionCall": {"id": c.id, "name": c.name, "args": c.input}} for c in calls
        ]
        if text:
            parts.append({"text": text})
        reply = {
            "candidates": [
                {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 20, "totalTokenCount": 120},
            "modelVersion": MODEL,
        }
        if "alt=sse" in rec.path:
            return 200, "text/event-stream", [f"data: {json.dumps(reply)}\r\n\r\n".encode()]
        return 200, "application/json", [json.dumps(reply).encode()]

    def main_requests(self) -> list[dict[str, Any]]:
        return [r.body for r in self.posts("/v1beta/") if isinstance(r.body, dict) and r.body.get("tools")]

    def responses(self) -> list[dict[str, Any]]:
        """The functionResponses of the last agent-loop request (the whole conversation so far)."""
        reqs = self.main_requests()
        return function_responses(reqs[-1].get("contents") or []) if reqs else []
