"""The SQLite LLM response cache: langchain's BaseCache contract, persistence, and the
streamed path langchain does not cache by itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, Generation
from pydantic import BaseModel

from support.scripted_model import ScriptedChatModel
from tradecast.errors import LLMError
from tradecast.llm.cache import SqliteLLMCache, astream_cached, cache_key, use_cache

MESSAGES = [SystemMessage("You are terse."), HumanMessage("Price of BTC?")]


class View(BaseModel):
    action: str
    confidence: float


def test_lookup_update_roundtrip_keeps_messages_tool_calls_and_usage(tmp_path: Path):
    cache = SqliteLLMCache(tmp_path / "c.sqlite")
    message = AIMessage(
        content="",
        tool_calls=[{"name": "get_price", "args": {"symbol": "BTC/USDT"}, "id": "call-1"}],
        usage_metadata={"input_tokens": 12, "output_tokens": 7, "total_tokens": 19},
    )
    assert cache.lookup("p", "model-a") is None
    cache.update("p", "model-a", [ChatGeneration(message=message), Generation(text="plain")])
    got = cache.lookup("p", "model-a")
    assert got is not None and len(got) == 2
    assert got[0].message.tool_calls == message.tool_calls
    assert got[0].message.usage_metadata == message.usage_metadata
    assert got[1].text == "plain"
    assert cache.lookup("p", "model-b") is None, "the model's parameters are part of the key"
    assert cache.lookup("q", "model-a") is None, "the prompt is part of the key"
    assert (cache.hits, cache.misses) == (1, 3)


def test_answers_survive_a_new_process_and_clear_forgets_them(tmp_path: Path):
    path = tmp_path / "c.sqlite"
    first = SqliteLLMCache(path)
    first.update("p", "m", [ChatGeneration(message=AIMessage(content="hi"))])
    first.close()
    second = SqliteLLMCache(path)
    assert second.lookup("p", "m")[0].message.content == "hi"
    assert len(second) == 1
    second.clear()
    assert second.lookup("p", "m") is None and len(second) == 0
    assert cache_key("p", "m") != cache_key("m", "p")


async def test_a_cached_model_is_asked_once(tmp_path: Path):
    cache = SqliteLLMCache(tmp_path / "c.sqlite")
    model = ScriptedChatModel(script=[{"action": "BUY", "confidence": 0.7}])
    use_cache([model], cache)
    runnable = model.with_structured_output(View, include_raw=True)
    first = await runnable.ainvoke(MESSAGES)
    again = await runnable.ainvoke(MESSAGES)
    assert model.calls == 1
    assert first["parsed"] == again["parsed"] == View(action="BUY", confidence=0.7)
    assert again["raw"].usage_metadata["input_tokens"] == 10, "usage is replayed"
    other = await model.ainvoke([HumanMessage("something else")])
    assert model.calls == 2 and other.content


async def test_a_fresh_model_reads_answers_another_one_cached(tmp_path: Path):
    cache = SqliteLLMCache(tmp_path / "c.sqlite")
    writer = ScriptedChatModel(script=["first answer"])
    use_cache([writer], cache)
    await writer.ainvoke(MESSAGES)
    reader = ScriptedChatModel(script=["a different answer"])
    use_cache([reader], cache)
    assert (await reader.ainvoke(MESSAGES)).content == "first answer"
    assert reader.calls == 0


async def test_streamed_answers_are_cached_and_replayed_in_pieces(tmp_path: Path):
    cache = SqliteLLMCache(tmp_path / "c.sqlite")
    model = ScriptedChatModel(script=["Bought the dip. Holding steady now!"])
    use_cache([model], cache)
    streamed = [c async for c in astream_cached(model, MESSAGES, max_tokens=40)]
    replayed = [c async for c in astream_cached(model, MESSAGES, max_tokens=40)]
    assert model.calls == 1
    text = "".join(str(c.content) for c in streamed)
    assert (
        "".join(str(c.content) for c in replayed) == text == ("Bought the dip. Holding steady now!")
    )
    assert len([c for c in replayed if c.content]) > 1, "a replay still streams"
    usage = [c.usage_metadata for c in replayed if c.usage_metadata]
    assert usage and usage[-1]["output_tokens"] == 6
    other = [c async for c in astream_cached(model, MESSAGES, max_tokens=41)]
    assert model.calls == 2 and other, "max_tokens is part of the key"


async def test_streaming_without_a_cache_is_plain_astream():
    model = ScriptedChatModel(script=["No cache here."])
    chunks = [c async for c in astream_cached(model, MESSAGES)]
    assert "".join(str(c.content) for c in chunks) == "No cache here."
    use_cache([model], None)
    assert model.cache is False


async def test_failed_calls_are_not_cached(tmp_path: Path):
    cache = SqliteLLMCache(tmp_path / "c.sqlite")
    model = ScriptedChatModel(script=[LLMError("timeout", "too slow"), "recovered"])
    use_cache([model], cache)
    with pytest.raises(LLMError):
        [c async for c in astream_cached(model, MESSAGES)]
    assert len(cache) == 0
    chunks = [c async for c in astream_cached(model, MESSAGES)]
    assert "".join(str(c.content) for c in chunks) == "recovered"
    assert len(cache) == 1
