"""A local HTTP server that speaks just enough of each LLM vendor's API to test the SDKs.

It enforces the request shape each vendor documents (path, auth header, body fields)
and answers 400 when a request is malformed, so a provider that sends the wrong shape
fails its test. ``mode`` switches to errors: ``429``, ``500``, ``401``, ``slow``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PLAN = {
    "intent": "count",
    "table": "cloudtrail",
    "filters": [{"column": "event_type", "op": "in", "value": ["ConsoleLogin"]}],
}


class Stub:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.mode = "ok"
        self.fail_times = 0  # errors before succeeding (retry tests)
        self.reply: dict[str, Any] = dict(PLAN)
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:
                n = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(n)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = None
                req = {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                }
                stub.requests.append(req)
                status, payload, headers = stub.respond(req)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- vendor shapes ---------------------------------------------------------------
    def respond(self, req: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        path, h, body = req["path"], req["headers"], req["body"]
        vendor = self.vendor_of(path, h)
        if vendor is None or body is None:
            return 404, {"error": {"message": f"unknown route {path}"}}, {}
        problem = self.check(vendor, path, h, body)
        if problem:
            return 400, {"error": {"message": problem}}, {}
        if self.mode == "slow":
            time.sleep(2.0)
        code = None
        if self.fail_times > 0:
            self.fail_times -= 1
            code = 429
        elif self.mode.isdigit():
            code = int(self.mode)
        if code is not None:
            extra = {"retry-after": "0"} if code == 429 else {}
            if vendor == "bedrock" and code == 429:
                extra["x-amzn-errortype"] = (
                    "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"
                )
                return (
                    429,
                    {"message": "Too many requests, please wait before trying again."},
                    extra,
                )
            return (
                code,
                {"error": {"message": f"stub error {code}", "type": "error", "code": code}},
                extra,
            )
        return 200, self.success(vendor, body), {}

    @staticmethod
    def vendor_of(path: str, h: dict[str, str]) -> str | None:
        if path.startswith("/v1/messages"):
            return "anthropic"
        if path.startswith("/openai/deployments/"):
            return "azure_openai"
        if path.startswith("/v1/chat/completions"):
            return "openai"
        if re.match(r"^/model/[^/]+/converse$", path):
            return "bedrock"
        if "/projects/" in path and ":generateContent" in path:
            return "vertex"
        if re.match(r"^/v1(beta)?/models/[^/:]+:generateContent", path):
            return "google_ai"
        return None

    @staticmethod
    def check(vendor: str, path: str, h: dict[str, str], b: dict[str, Any]) -> str | None:
        if vendor == "anthropic":
            key_ok = "sk-ant-test" in (
                h.get("x-api-key"),
                h.get("authorization", "").removeprefix("Bearer "),
            )
            if not key_ok or not h.get("anthropic-version"):
                return "missing x-api-key / anthropic-version"
            if (
                not b.get("model")
                or not isinstance(b.get("max_tokens"), int)
                or not b.get("messages")
            ):
                return "model, max_tokens and messages are required"
            if "tools" in b and b.get("tool_choice", {}).get("type") != "tool":
                return "tool_choice must force the tool"
            return None
        if vendor in ("openai", "azure_openai"):
            if vendor == "openai" and h.get("authorization") != "Bearer sk-openai-test":
                return "bad Authorization"
            if vendor == "azure_openai":
                if h.get("api-key") != "azure-test-key" or "api-version=" not in path:
                    return "missing api-key header or api-version"
                if "/openai/deployments/mantissa-gpt/chat/completions" not in path:
                    return "wrong deployment path"
            if not b.get("messages") or (vendor == "openai" and not b.get("model")):
                return "model and messages are required"
            rf = b.get("response_format")
            if rf is not None and (
                rf.get("type") != "json_schema" or "schema" not in rf.get("json_schema", {})
            ):
                return "response_format must be json_schema"
            return None
        if vendor == "bedrock":
            if not h.get("authorization", "").startswith("AWS4-HMAC-SHA256 Credential=AKIDTEST/"):
                return "request is not SigV4-signed with the test key"
            if "bedrock" not in h.get("authorization", ""):
                return "SigV4 scope must name the bedrock service"
            msgs = b.get("messages") or []
            if not msgs or not isinstance(msgs[0].get("content"), list):
                return "messages[].content must be a list of blocks"
            tc = b.get("toolConfig")
            if tc is not None and not tc["tools"][0]["toolSpec"]["inputSchema"].get("json"):
                return "toolSpec.inputSchema.json required"
            return None
        if vendor == "google_ai" and h.get("x-goog-api-key") != "gemini-test-key":
            return "missing x-goog-api-key"
        if vendor == "vertex":
            if h.get("authorization") != "Bearer ya29.test-token":
                return "missing bearer token"
            if not re.match(
                r"^/v1(beta1)?/projects/proj-1/locations/europe-west4/publishers/google/models/",
                path,
            ):
                return "wrong Vertex resource path"
        if not b.get("contents"):
            return "contents required"
        return None

    def success(self, vendor: str, b: dict[str, Any]) -> Any:
        text = json.dumps(self.reply)
        if vendor == "anthropic":
            if "tools" in b:
                content = [
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": b["tools"][0]["name"],
                        "input": self.reply,
                    }
                ]
            else:
                content = [{"type": "text", "text": "hello"}]
            return {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": b["model"],
                "content": content,
                "stop_reason": "tool_use",
                "stop_sequence": None,
                "usage": {"input_tokens": 5, "output_tokens": 5},
            }
        if vendor in ("openai", "azure_openai"):
            content = text if "response_format" in b else "hello"
            return {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": b.get("model", "x"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        if vendor == "bedrock":
            if "toolConfig" in b:
                content = [
                    {
                        "toolUse": {
                            "toolUseId": "t1",
                            "name": b["toolConfig"]["tools"][0]["toolSpec"]["name"],
                            "input": self.reply,
                        }
                    }
                ]
            else:
                content = [{"text": "hello"}]
            return {
                "output": {"message": {"role": "assistant", "content": content}},
                "stopReason": "tool_use",
                "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
                "metrics": {"latencyMs": 1},
            }
        gen = b.get("generationConfig") or {}
        content = text if gen.get("responseMimeType") == "application/json" else "hello"
        return {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": content}]},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 1,
                "candidatesTokenCount": 1,
                "totalTokenCount": 2,
            },
            "modelVersion": "gemini-test",
        }
