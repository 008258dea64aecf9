"""A stub of the OpenAI Responses API, streamed over HTTP (SSE) the way Codex CLI reads it.

What Codex asks and gets here:

- ``GET /v1/responses`` with ``Upgrade: websocket`` (its preferred transport, first): a plain
  ``426``, after which Codex falls back to HTTP streaming for the session.
- ``POST /v1/responses`` (``stream: true``): turn 1 a tool call that writes the script's
  file, turn 2 (once ``input`` carries that call's output) a text answer. Which tools are
  offered depends on the model: Codex 0.169's default (``gpt-6.1-sol``) is in "code mode",
  its tools in an ``input`` item of type ``additional_tools`` (namespaces nest them) and
  the only one that runs anything the freeform ``exec`` (JavaScript that awaits
  ``tools.exec_command(...)``): the call is a ``custom_tool_call``, its result comes back
  as ``custom_tool_call_output``. Other models (``-m gpt-5.1-codex``, or a name Codex does
  not know) get plain functions in the body's ``tools``: ``exec_command`` (or
  ``shell_command`` / ``shell`` in other versions) gets a ``function_call``, answered by
  a ``function_call_output``.
- ``GET /v1/models``: an empty list (Codex 0.169 with an API key never asked).
- No ``Authorization: Bearer`` (``codex exec`` sends one only from ``CODEX_API_KEY``): a
  ``401``, as the real API answers.
"""

from __future__ import annotations

import contextlib
import json
import shlex
from collections.abc import Iterator
from typing import Any

from tests.stubs.base import Recorded, StubHandler

CALL_ID = "call_stub_write_1"
OUTPUT_TYPES = ("function_call_output", "custom_tool_call_output")


def offered_tools(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every tool the request offers, namespaces flattened (body ``tools`` and the
    ``additional_tools`` items of ``input``)."""
    stack = list(body.get("tools") or [])
    for item in body.get("input") or []:
        if isinstance(item, dict) and item.get("type") == "additional_tools":
            stack.extend(item.get("tools") or [])
    while stack:
        tool = stack.pop(0)
        if tool.get("type") == "namespace":
            stack.extend(tool.get("tools") or [])
        else:
            yield tool


def tool_output(body: dict[str, Any], call_id: str = CALL_ID) -> Any:
    """The output the request carries for ``call_id`` (None when it carries none)."""
    for item in body.get("input") or []:
        if (isinstance(item, dict) and item.get("type") in OUTPUT_TYPES
                and item.get("call_id") == call_id):
            return item.get("output")
    return None


class OpenAIStub(StubHandler):
    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):  # a client (or proxy) hanging up early
            super().handle()

    def answer(self, rec: Recorded) -> None:
        path = rec.path.split("?", 1)[0]
        if rec.headers.get("upgrade", "").lower() == "websocket":
            self.close_connection = True
            self.send_json(426, {"error": {"message": "stub: no WebSocket, use HTTP"}})
        elif not rec.secrets.get("authorization", "").startswith("Bearer "):
            self.send_json(401, {"error": {"message": "stub: no API key (Authorization: Bearer)",
                                           "type": "invalid_request_error",
                                           "code": "invalid_api_key"}})
        elif rec.method == "POST" and path.endswith("/responses"):
            self.respond(rec.json())
        elif rec.method == "GET" and path.endswith("/models"):
            self.send_json(200, {"object": "list", "data": [], "models": []})
        else:
            self.send_json(404, {"error": {"message": f"stub: no {rec.method} {path}"}})

    def respond(self, body: dict[str, Any]) -> None:
        second = tool_output(body) is not None
        resp_id = "resp_stub_2" if second else "resp_stub_1"
        self.start_sse()
        self.event("response.created", response={"id": resp_id, "object": "response",
                                                 "status": "in_progress", "output": []})
        if second:
            self.send_text(self.server.script.final)
        else:
            self.send_tool_call(body)
        self.event("response.completed", response={
            "id": resp_id, "object": "response", "status": "completed", "output": [],
            "usage": {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0},
                      "total_tokens": 15}})

    def event(self, kind: str, **fields: Any) -> None:
        self.sse({"type": kind, **fields}, event=kind)

    def send_text(self, text: str) -> None:
        item = {"type": "message", "id": "msg_stub_1", "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}]}
        self.event("response.output_item.added", output_index=0,
                   item={**item, "status": "in_progress", "content": []})
        self.event("response.output_text.delta", output_index=0, content_index=0,
                   item_id="msg_stub_1", delta=text)
        self.event("response.output_text.done", output_index=0, content_index=0,
                   item_id="msg_stub_1", text=text)
        self.event("response.output_item.done", output_index=0, item=item)

    def send_tool_call(self, body: dict[str, Any]) -> None:
        script = self.server.script
        command = f"printf %s {shlex.quote(script.content)} > {shlex.quote(script.path)}"
        tools = {t.get("name"): t for t in offered_tools(body)}
        base = {"id": "fc_stub_1", "call_id": CALL_ID, "status": "completed"}
        if "exec" in tools and tools["exec"].get("type") == "custom":  # code mode
            code = (f"const r = await tools.exec_command({{cmd: {json.dumps(command)}, "
                    "login: false});\ntext(r);\n")
            item = {**base, "type": "custom_tool_call", "name": "exec", "input": code}
            kind, field, value = "custom_tool_call_input", "input", code
        else:
            if "exec_command" in tools:
                name, args = "exec_command", {"cmd": command, "login": False}
            elif "shell_command" in tools:
                name, args = "shell_command", {"command": command}
            else:
                name, args = "shell", {"command": ["bash", "-c", command]}
            value = json.dumps(args)
            item = {**base, "type": "function_call", "name": name, "arguments": value}
            kind, field = "function_call_arguments", "arguments"
        self.event("response.output_item.added", output_index=0,
                   item={**item, field: "", "status": "in_progress"})
        self.event(f"response.{kind}.delta", output_index=0, item_id="fc_stub_1", delta=value)
        self.event(f"response.{kind}.done", output_index=0, item_id="fc_stub_1",
                   **{field: value})
        self.event("response.output_item.done", output_index=0, item=item)
