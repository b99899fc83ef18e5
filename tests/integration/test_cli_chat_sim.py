"""`tradecast chat-sim` replays a chat file into a real server's viewer chat; a bad file or
a bad rate is a message and a non-zero exit, before anything is sent."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support.api import OPERATOR, api_settings, context, memory, scripted_models, uvicorn_server
from tradecast.api.app import create_app
from tradecast.cli import app as cli
from tradecast.cli.chat_sim import read_messages

CHAT = """# a short evening in chat
Ana: what did the desk just do?
{"display_name": "mo", "text": "!mute troll", "is_mod": true}
{"display_name": "troll", "text": "hello?"}
Bo: should I buy now?
"""


def run_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


async def test_a_chat_file_is_replayed_through_moderation(tmp_path: Path, embedder) -> None:
    chat = tmp_path / "chat.txt"
    chat.write_text(CHAT)
    app = create_app(
        api_settings(tmp_path / "data"), models=scripted_models(), memory=memory(embedder)
    )
    async with uvicorn_server(app) as url:
        code, output, errors = await asyncio.to_thread(
            run_cli,
            "chat-sim",
            str(chat),
            "--url",
            url,
            "--key",
            OPERATOR,
            "--rate",
            "50",
            "--json",
        )
        assert code == 0, errors
        report = json.loads(output)
        assert [v["verdict"] for v in report["verdicts"]] == [
            "queued",
            "command",
            "rejected",
            "queued",
        ]
        assert report["verdicts"][2]["reason"] == "the viewer is muted"
        audience = context(app).audience
        assert audience is not None
        async with asyncio.timeout(30):
            while audience.stats.answered + audience.stats.refused < 2:
                await asyncio.sleep(0.05)
        assert (audience.stats.answered, audience.stats.refused) == (1, 1)


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("Ana what no colon\n", (), "chat.txt:1: expected 'name: text'"),
        ('{"display_name": "Ana", "text": ""}\n', (), "chat.txt:1: text:"),
        ('{"display_name": "Ana", "text": "hi", "is_mod": "yes"}\n', (), "is_mod"),
        ("Ana: hi\n", ("--rate", "1000"), "--rate must be above 0 and at most 100"),
    ],
)
def test_bad_files_and_rates_exit_non_zero(tmp_path: Path, content, args, message) -> None:
    chat = tmp_path / "chat.txt"
    chat.write_text(content)
    code, _, errors = run_cli(
        "chat-sim", str(chat), "--key", "k", "--url", "http://127.0.0.1:9", *args
    )
    assert code == 2 and message in errors, errors


def test_an_unreachable_desk_is_a_message(tmp_path: Path) -> None:
    chat = tmp_path / "chat.txt"
    chat.write_text("Ana: hi\n")
    code, _, errors = run_cli("chat-sim", str(chat), "--key", "k", "--url", "http://127.0.0.1:9")
    assert code == 1 and "cannot reach" in errors


def test_the_readmes_example_chat_file_reads() -> None:
    example = Path(__file__).parents[2] / "docs" / "examples" / "viewer-chat.txt"
    messages = read_messages(example)
    assert len(messages) == 8 and messages[5].is_mod and messages[0].display_name == "ana"
