"""``langgraph.json``: the graphs it names are what ``langgraph dev`` (LangGraph Studio) loads.
Each path resolves, and the factories open the real desk (embedded model, memory, SQLite)
from the environment's settings and give its compiled graphs; a chat message runs through
the chat graph they give."""

from __future__ import annotations

import importlib.util
import inspect
import json
from pathlib import Path

import pytest

from tradecast.api import studio
from tradecast.graphs.chat_review import chat_config, chat_input

ROOT = Path(__file__).resolve().parents[2]


def load_factory(spec: str):
    path, _, name = spec.partition(":")
    module_spec = importlib.util.spec_from_file_location("studio_graphs", ROOT / path)
    assert module_spec and module_spec.loader
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return getattr(module, name)


def test_langgraph_json_names_the_two_graphs() -> None:
    config = json.loads((ROOT / "langgraph.json").read_text())
    assert config["dependencies"] == ["."]
    assert set(config["graphs"]) == {"desk", "chat"}
    for spec in config["graphs"].values():
        assert inspect.iscoroutinefunction(load_factory(spec))


@pytest.mark.slow
async def test_the_factories_open_the_real_desk(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRADECAST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRADECAST_DESK__AUTOSTART", "false")
    monkeypatch.setenv("TRADECAST_VOICE__BACKEND", "off")
    try:
        desk = await studio.desk({})
        chat = await studio.chat({})
        assert await studio.desk() is desk, "one desk for the life of the process"
        assert {"analyst", "risk_gate", "approval", "persona"} <= set(desk.get_graph().nodes)
        state = await chat.ainvoke(
            {**chat_input({"message": "status"}), "role": "operator", "actor": "studio"},
            chat_config("studio-1", role="operator", actor="studio"),
        )
        assert state["reply"].command == "status" and state["reply"].applied
        assert [m.type for m in state["messages"]] == ["human", "ai"]
    finally:
        await studio.close()
