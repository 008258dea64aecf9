"""A stub of the Gemini API (``generativelanguage``, ``v1beta``), as Gemini CLI uses it.

``POST /v1beta/models/MODEL:generateContent`` (one JSON response) and
``:streamGenerateContent?alt=sse`` (the same response as one server-sent event) answer
from the server's :class:`~tests.stubs.base.Script`:

* a request whose ``contents`` carry a ``functionResponse``: the ``final`` text, ``STOP``;
* a request that offers the ``write_file`` tool (``file_path``, ``content``) and carries
  no ``functionResponse`` yet: a ``functionCall`` of it writing ``content`` to ``path``;
* a request that asks for JSON (``generationConfig.responseJsonSchema`` or
  ``responseSchema``: Gemini CLI's model router, its next-speaker check, …): an object
  that fits the schema, each enum's first value (``next_speaker`` is then ``user``);
* any other request (a side query without that tool): a short text.

``:countTokens`` counts roughly (4 characters a token), ``GET /v1beta/models`` lists
:data:`MODELS`, ``GET /v1beta/models/MODEL`` names one; anything else is the API's
``NOT_FOUND`` error.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from tests.stubs.base import Recorded, StubHandler, StubServer

TOOL = "write_file"
MODELS = ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite")
SIDE_TEXT = "stub"
GENERATE = ("generateContent", "streamGenerateContent")


def function_responses(body: Any) -> list[dict[str, Any]]:
    """The ``functionResponse`` parts of a request's ``contents``."""
    found: list[dict[str, Any]] = []
    for content in (body or {}).get("contents") or []:
        for part in (content.get("parts") or []) if isinstance(content, dict) else []:
            if isinstance(part, dict) and isinstance(part.get("functionResponse"), dict):
                found.append(part["functionResponse"])
    return found


def offers_tool(body: Any, name: str = TOOL) -> bool:
    """Whether the request declares the function ``name`` among its ``tools``."""
    for tool in (body or {}).get("tools") or []:
        for decl in (tool.get("functionDeclarations") or []) if isinstance(tool, dict) else []:
            if isinstance(decl, dict) and decl.get("name") == name:
                return True
    return False


def method_of(path: str) -> tuple[str, str]:
    """``/v1beta/models/M:generateContent?alt=sse`` → (``M``, ``generateContent``)."""
    last = urlsplit(path).path.rstrip("/").rsplit("/", 1)[-1]
    model, _, method = last.partition(":")
    return model, method


def model_requests(server: StubServer) -> list[Recorded]:
    """The recorded ``generateContent`` / ``streamGenerateContent`` requests, in order."""
    with server.lock:
        return [r for r in server.requests if method_of(r.path)[1] in GENERATE]


def agent_turns(server: StubServer) -> list[Recorded]:
    """The model requests of the agent loop itself: those that offer ``write_file`` (the
    helper calls, such as the model router's, offer no tools)."""
    return [r for r in model_requests(server) if offers_tool(r.json())]


def from_schema(schema: Any) -> Any:
    """A value that fits a JSON schema (or the API's ``Schema``, with ``OBJECT``-style types)."""
    if not isinstance(schema, dict):
        return "stub"
    if schema.get("enum"):
        return schema["enum"][0]
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives:
        return from_schema(alternatives[0])
    kind = schema.get("type", "object")
    kind = str(kind[0] if isinstance(kind, list) else kind).lower()
    if kind == "object":
        return {k: from_schema(v) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [from_schema(schema.get("items"))] if schema.get("minItems") else []
    # numbers: the router's complexity score is 1-100
    return {"integer": schema.get("minimum", 1), "number": schema.get("minimum", 1),
            "boolean": False, "null": None}.get(kind, "stub")


def _tokens(value: Any) -> int:
    return max(1, len(json.dumps(value)) // 4)


class GeminiStub(StubHandler):
    def answer(self, rec: Recorded) -> None:
        model, method = method_of(rec.path)
        route = urlsplit(rec.path).path.rstrip("/")
        if rec.method == "HEAD" or (rec.method == "GET" and route in ("", "/v1beta")):
            self.send_json(200, {})
        elif rec.method == "GET" and route.endswith("/models"):
            self.send_json(200, {"models": [self.model(m) for m in MODELS]})
        elif rec.method == "GET" and "/models/" in route and not method:
            self.send_json(200, self.model(model))
        elif rec.method == "POST" and method == "countTokens":
            body = rec.json() or {}
            req = body.get("generateContentRequest") or body
            self.send_json(200, {"totalTokens": _tokens([req.get("contents"),
                                                         req.get("systemInstruction")])})
        elif rec.method == "POST" and method in GENERATE:
            self.respond(rec.json() or {}, model, stream=method == GENERATE[1])
        else:
            self.send_json(404, {"error": {"code": 404, "status": "NOT_FOUND",
                                           "message": f"stub: no {rec.method} {route}"}})

    @staticmethod
    def model(name: str) -> dict[str, Any]:
        return {"name": f"models/{name}", "displayName": name, "version": "001",
                "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
                "supportedGenerationMethods": ["generateContent", "countTokens"]}

    def parts(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The answer's ``parts``."""
        script = self.server.script
        config = body.get("generationConfig") or {}
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        if schema is not None:
            return [{"text": json.dumps(from_schema(schema))}]
        if function_responses(body):
            return [{"text": script.final}]
        if offers_tool(body):
            return [{"text": "I will write the file."},
                    {"functionCall": {"name": TOOL, "args": {"file_path": script.path,
                                                             "content": script.content}}}]
        return [{"text": SIDE_TEXT}]

    def respond(self, body: dict[str, Any], model: str, stream: bool) -> None:
        parts = self.parts(body)
        prompt = _tokens(body.get("contents"))
        doc = {
            "candidates": [{"content": {"role": "model", "parts": parts},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": _tokens(parts),
                              "totalTokenCount": prompt + _tokens(parts)},
            "modelVersion": model or MODELS[0],
            "responseId": f"stub-{len(self.server.requests):04d}",
        }
        if not stream:
            self.send_json(200, doc)
            return
        self.start_sse()
        self.sse(doc)
