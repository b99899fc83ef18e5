"""The Ollama backend against recorded responses in Ollama's real wire format, served by a
loopback HTTP server (streamed NDJSON chat chunks, ``format`` answers, ``tool_calls``)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import pytest
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from tradecast.errors import LLMError
from tradecast.llm import OllamaChatModel, create_chat_model
from tradecast.settings import LLMBackend, LLMConfig, RoleLLMConfig


@dataclass
class Scripted:
    status: int
    body: bytes
    content_type: str = "application/json"
    delay_s: float = 0.0


@dataclass
class FakeOllama:
    """A loopback server that answers /api/chat from a script and records the requests."""

    responses: list[Scripted] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""


def _handler(state: FakeOllama) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            state.requests.append(json.loads(self.rfile.read(length) or b"{}"))
            scripted = state.responses.pop(0)
            time.sleep(scripted.delay_s)
            self.send_response(scripted.status)
            self.send_header("content-type", scripted.content_type)
            self.send_header("content-length", str(len(scripted.body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError):  # the client gave up (timeout test)
                self.wfile.write(scripted.body)

        def log_message(self, *args: Any) -> None:
            return

    return Handler


@pytest.fixture
def ollama_server() -> Iterator[FakeOllama]:
    state = FakeOllama()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _model(url: str, timeout_s: float = 5.0) -> OllamaChatModel:
    config = LLMConfig(backend=LLMBackend.OLLAMA, ollama_base_url=url, timeout_s=timeout_s)
    model = create_chat_model(config, "analyst")
    assert isinstance(model, OllamaChatModel)
    return model


def _fixture(fixtures_dir: Path, name: str) -> bytes:
    return (fixtures_dir / "ollama" / name).read_bytes()


class Verdict(BaseModel):
    action: Literal["BUY", "SELL", "HOLD"]
    confidence: float = Field(ge=0, le=1)


def test_ollama_streams_ndjson_chunks_in_order(ollama_server: FakeOllama, fixtures_dir: Path):
    ollama_server.responses.append(
        Scripted(200, _fixture(fixtures_dir, "chat_stream.ndjson"), "application/x-ndjson")
    )
    chunks = list(_model(ollama_server.url).stream("How is BTC?"))
    text = "".join(c.content for c in chunks if isinstance(c.content, str))
    assert text == "BTC is ranging."
    usage = next(c.usage_metadata for c in chunks if c.usage_metadata)
    assert usage["input_tokens"] == 31 and usage["output_tokens"] == 3
    assert ollama_server.requests[0]["stream"] is True
    assert ollama_server.requests[0]["model"] == "qwen2.5:7b-instruct"


def test_ollama_structured_output_sends_format_schema(
    ollama_server: FakeOllama, fixtures_dir: Path
):
    ollama_server.responses.append(Scripted(200, _fixture(fixtures_dir, "chat_format.json")))
    answer = _model(ollama_server.url).with_structured_output(Verdict).invoke("Decide.")
    assert answer == Verdict(action="HOLD", confidence=0.55)
    sent_format = ollama_server.requests[0]["format"]
    assert sent_format["properties"]["action"]["enum"] == ["BUY", "SELL", "HOLD"]


def test_ollama_unparseable_structured_answer_is_typed_error(
    ollama_server: FakeOllama, fixtures_dir: Path
):
    ollama_server.responses.append(Scripted(200, _fixture(fixtures_dir, "chat_bad_json.json")))
    with pytest.raises(LLMError) as caught:
        _model(ollama_server.url).with_structured_output(Verdict).invoke("Decide.")
    assert caught.value.kind == "unparseable"


def test_ollama_tool_calls_become_langchain_tool_calls(
    ollama_server: FakeOllama, fixtures_dir: Path
):
    @tool
    def get_price(symbol: str) -> str:
        """Latest price of a symbol."""
        return "0"

    ollama_server.responses.append(Scripted(200, _fixture(fixtures_dir, "chat_tool_calls.json")))
    message = _model(ollama_server.url).bind_tools([get_price]).invoke("Price of BTC?")
    assert message.tool_calls[0]["name"] == "get_price"
    assert message.tool_calls[0]["args"] == {"symbol": "BTC/USDT"}
    assert ollama_server.requests[0]["tools"][0]["function"]["name"] == "get_price"


def test_ollama_missing_model_is_actionable(ollama_server: FakeOllama, fixtures_dir: Path):
    ollama_server.responses.append(Scripted(404, _fixture(fixtures_dir, "model_not_found.json")))
    with pytest.raises(LLMError) as caught:
        _model(ollama_server.url).invoke("hi")
    assert caught.value.kind == "model_missing"
    assert "ollama pull qwen2.5:7b-instruct" in str(caught.value)


def test_ollama_connection_refused_is_unreachable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(LLMError) as caught:
        _model(f"http://127.0.0.1:{port}").invoke("hi")
    assert caught.value.kind == "unreachable"
    assert f"127.0.0.1:{port}" in str(caught.value)


async def test_ollama_timeout_is_typed_error(ollama_server: FakeOllama, fixtures_dir: Path):
    ollama_server.responses.append(
        Scripted(200, _fixture(fixtures_dir, "chat_format.json"), delay_s=1.0)
    )
    with pytest.raises(LLMError) as caught:
        await _model(ollama_server.url, timeout_s=0.2).ainvoke("hi")
    assert caught.value.kind == "timeout"


def test_role_override_picks_backend_and_model():
    config = LLMConfig(
        persona=RoleLLMConfig(backend=LLMBackend.OLLAMA, model="llama3.2:3b"),
    )
    persona = create_chat_model(config, "persona")
    assert isinstance(persona, OllamaChatModel)
    assert persona.model == "llama3.2:3b"
    assert config.for_role("analyst") == (LLMBackend.LLAMACPP, None)


async def test_ollama_takes_max_tokens_like_every_backend(
    ollama_server: FakeOllama, fixtures_dir: Path
):
    # the persona streams with max_tokens=...; Ollama's name for it is num_predict
    ollama_server.responses.append(
        Scripted(200, _fixture(fixtures_dir, "chat_stream.ndjson"), "application/x-ndjson")
    )
    chunks = [c async for c in _model(ollama_server.url).astream("How is BTC?", max_tokens=40)]
    assert "".join(str(c.content) for c in chunks) == "BTC is ranging."
    sent = ollama_server.requests[0]
    assert sent["options"]["num_predict"] == 40 and "max_tokens" not in sent
