"""A stub of the Anthropic Messages API, as Claude Code and OpenCode's Anthropic provider use it.

``POST /v1/messages`` (streamed as SSE when the body says ``"stream": true``, else one JSON
message) answers from the server's :class:`~tests.stubs.base.Script`:

* a request that offers the harness's file-writing tool (Claude Code's ``Write`` with
  ``file_path``, OpenCode's ``write`` with ``filePath``) and carries no ``tool_result`` yet:
  a ``tool_use`` of that tool (id :data:`TOOL_USE_ID`) writing ``content`` to ``path``,
  ``stop_reason`` ``tool_use``;
* a request whose messages carry a ``tool_result``: the ``final`` text, ``end_turn``;
* any other request (a side query without that tool: a title, a summary): a short text.

``POST /v1/messages/count_tokens`` counts roughly (4 characters a token), ``GET /v1/models``
lists :data:`MODELS`, ``GET /v1/models/ID`` names one; anything else is Anthropic's
``not_found_error`` (``HEAD`` and ``GET /`` answer 200, for reachability probes).
"""

from __future__ import annotations

import json
from typing import Any

from tests.stubs.base import Recorded, StubHandler

TOOL_USE_ID = "toolu_stub_write_01"
MODELS = ("claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-haiku-4-5-20251001")
PATH_KEYS = ("file_path", "filePath", "path")  # the write tool's path argument, by harness
SIDE_TEXT = "stub"


def tool_results(body: Any) -> list[dict[str, Any]]:
    """The ``tool_result`` blocks of a Messages request's ``messages``."""
    found: list[dict[str, Any]] = []
    for message in (body or {}).get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            found += [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
    return found


def tool_uses(body: Any) -> list[dict[str, Any]]:
    """The assistant's ``tool_use`` blocks in a Messages request's history."""
    found: list[dict[str, Any]] = []
    for message in (body or {}).get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            found += [b for b in content if isinstance(b, dict) and b.get("type") == "tool_use"]
    return found


def write_tool(body: Any) -> tuple[str, str] | None:
    """(name, path argument) of the file-writing tool the request offers, if any."""
    for tool in (body or {}).get("tools") or []:
        if not isinstance(tool, dict) or str(tool.get("name", "")).lower() != "write":
            continue
        props = (tool.get("input_schema") or {}).get("properties") or {}
        key = next((k for k in PATH_KEYS if k in props), PATH_KEYS[0])
        return str(tool["name"]), key
    return None


def _tokens(value: Any) -> int:
    return max(1, len(json.dumps(value)) // 4)


class AnthropicStub(StubHandler):
    def answer(self, rec: Recorded) -> None:
        path = rec.path.split("?", 1)[0].rstrip("/")
        if rec.method == "HEAD":  # a reachability probe (Claude Code: HEAD /api/hello)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if rec.method == "GET" and path in ("", "/v1"):
            self.send_json(200, {})
            return
        if rec.method == "GET" and path.endswith("/v1/models"):
            self.send_json(200, {"data": [self.model(m) for m in MODELS], "has_more": False,
                                 "first_id": MODELS[0], "last_id": MODELS[-1]})
            return
        if rec.method == "GET" and "/v1/models/" in path:
            self.send_json(200, self.model(path.rsplit("/", 1)[1]))
            return
        if rec.method == "POST" and path.endswith("/v1/messages/count_tokens"):
            body = rec.json() or {}
            self.send_json(200, {"input_tokens": _tokens([body.get("system"),
                                                          body.get("messages"),
                                                          body.get("tools")])})
            return
        if rec.method == "POST" and path.endswith("/v1/messages"):
            self.respond(rec.json() or {})
            return
        self.send_json(404, {"type": "error", "error": {
            "type": "not_found_error", "message": f"stub: no {rec.method} {path}"}})

    @staticmethod
    def model(name: str) -> dict[str, Any]:
        return {"type": "model", "id": name, "display_name": name,
                "created_at": "2025-01-01T00:00:00Z"}

    def blocks(self, body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        """The answer's content blocks and its stop reason."""
        script = self.server.script
        if tool_results(body):
            return [{"type": "text", "text": script.final}], "end_turn"
        tool = write_tool(body)
        if tool is None:
            return [{"type": "text", "text": SIDE_TEXT}], "end_turn"
        name, key = tool
        return [{"type": "text", "text": "I will write the file."},
                {"type": "tool_use", "id": TOOL_USE_ID, "name": name,
                 "input": {key: script.path, "content": script.content}}], "tool_use"

    def respond(self, body: dict[str, Any]) -> None:
        blocks, stop = self.blocks(body)
        model = str(body.get("model") or MODELS[0])
        usage = {"input_tokens": _tokens(body.get("messages")), "output_tokens": _tokens(blocks),
                 "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        msg_id = f"msg_stub_{len(self.server.requests):04d}"
        if not body.get("stream"):
            self.send_json(200, {"id": msg_id, "type": "message", "role": "assistant",
                                 "model": model, "content": blocks, "stop_reason": stop,
                                 "stop_sequence": None, "usage": usage})
            return
        self.start_sse()
        self.event("message_start", message={
            "id": msg_id, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {**usage, "output_tokens": 1}})
        self.event("ping")
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                self.event("content_block_start", index=index,
                           content_block={"type": "text", "text": ""})
                text = block["text"]
                for part in (text[: len(text) // 2], text[len(text) // 2:]):
                    self.event("content_block_delta", index=index,
                               delta={"type": "text_delta", "text": part})
            else:
                self.event("content_block_start", index=index, content_block={
                    "type": "tool_use", "id": block["id"], "name": block["name"], "input": {}})
                args = json.dumps(block["input"])
                for start in range(0, len(args), 16):  # in pieces, as the real API sends it
                    self.event("content_block_delta", index=index, delta={
                        "type": "input_json_delta", "partial_json": args[start:start + 16]})
            self.event("content_block_stop", index=index)
        self.event("message_delta", delta={"stop_reason": stop, "stop_sequence": None},
                   usage={"output_tokens": usage["output_tokens"]})
        self.event("message_stop")

    def event(self, kind: str, **fields: Any) -> None:
        self.sse({"type": kind, **fields}, event=kind)
