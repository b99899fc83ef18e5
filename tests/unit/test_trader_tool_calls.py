"""The trader's tool calls are kept in its LLM-call records (what the console's explanation
card and the tick report show)."""

from __future__ import annotations

from langchain_core.tools import tool

from support.scripted_model import NO_TOOL, ScriptedChatModel, trader
from tradecast.agents.trader import MAX_TOOL_CALL_CHARS, propose


@tool
def get_price(symbol: str) -> str:
    """The latest price of a symbol."""
    return f"{symbol} 30000"


async def test_each_tool_round_records_the_calls_the_model_asked_for() -> None:
    ask = {"name": "get_price", "arguments": {"symbol": "BTC/USDT"}}
    model = ScriptedChatModel(script=[ask, NO_TOOL, trader()])
    signal, proposal, calls = await propose(model, "BTC/USDT", "context", [get_price], 3)
    assert proposal is not None and signal.action.value == "BUY"
    assert [c.tool_calls for c in calls] == [('get_price({"symbol": "BTC/USDT"})',), (), ()]


async def test_a_long_tool_call_is_cut_to_a_readable_length() -> None:
    ask = {"name": "get_price", "arguments": {"symbol": "X" * 1000}}
    model = ScriptedChatModel(script=[ask, NO_TOOL, trader()])
    _, _, calls = await propose(model, "BTC/USDT", "context", [get_price], 3)
    assert len(calls[0].tool_calls[0]) == MAX_TOOL_CALL_CHARS
