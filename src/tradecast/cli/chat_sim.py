"""``tradecast chat-sim``: replay a file of viewers' messages into a running desk's chat.

Each message goes to ``POST /v1/viewers/chat`` (operator key), through the same moderation
as Twitch and YouTube chat; the persona answers what is admitted on its stream.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import typer
from pydantic import ValidationError
from tqdm import tqdm

from tradecast.api.schemas import ViewerChatBody
from tradecast.cli.common import fail, print_json

MAX_RATE = 100.0
MAX_MESSAGES = 100_000
RATE_LIMITED_TRIES = 10


def read_messages(path: Path) -> list[ViewerChatBody]:
    """The messages of a chat file: JSON lines (``{"display_name", "text", "is_mod"...}``) or
    plain ``name: text`` lines; blank lines and ``#`` comments are skipped.

    Raises:
        ValueError: a line is neither, or its fields are invalid (the line number is named).
    """
    messages: list[ViewerChatBody] = []
    for number, raw in enumerate(path.read_text("utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            messages.append(ViewerChatBody.model_validate(_fields(line)))
        except (ValueError, ValidationError) as exc:
            raise ValueError(f"{path}:{number}: {_first_error(exc)}") from None
        if len(messages) > MAX_MESSAGES:
            raise ValueError(f"{path}: more than {MAX_MESSAGES} messages")
    return messages


def _fields(line: str) -> dict[str, Any]:
    if line.startswith("{"):
        value = json.loads(line)
        if not isinstance(value, dict):
            raise ValueError("a JSON line must be an object")
        return value
    name, colon, text = line.partition(":")
    if not colon:
        raise ValueError("expected 'name: text' or a JSON object")
    return {"display_name": name.strip(), "text": text.strip()}


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "line"
        return f"{where}: {error['msg']}"
    return str(exc)


def chat_sim(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="the messages to replay"),
    url: str = typer.Option("http://127.0.0.1:8000", help="the running desk's API"),
    key: str = typer.Option(
        ..., envvar="TRADECAST_OPERATOR_KEY", help="an operator key (or TRADECAST_OPERATOR_KEY)"
    ),
    rate: float = typer.Option(1.0, help=f"messages per second (at most {MAX_RATE:g})"),
    as_json: bool = typer.Option(False, "--json", help="print every verdict as JSON"),
) -> None:
    """Replay FILE's messages into the desk's viewer chat, as a viewer would write them."""
    if not 0 < rate <= MAX_RATE:
        fail(f"--rate must be above 0 and at most {MAX_RATE:g} (got {rate})", code=2)
    try:
        messages = read_messages(file)
    except (OSError, ValueError) as exc:
        fail(str(exc), code=2)
    verdicts = _send_all(messages, url, key, 1.0 / rate)
    counts: dict[str, int] = {}
    for verdict in verdicts:
        counts[verdict["verdict"]] = counts.get(verdict["verdict"], 0) + 1
    if as_json:
        print_json({"sent": len(verdicts), "verdicts": verdicts, "counts": counts})
    else:
        typer.echo(f"sent {len(verdicts)}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))


def _send_all(
    messages: list[ViewerChatBody], url: str, key: str, interval_s: float
) -> list[dict[str, Any]]:
    verdicts: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        for message in tqdm(messages, desc="chat", unit="msg", disable=len(messages) < 10):
            started = time.monotonic()
            verdicts.append(_send(client, message))
            time.sleep(max(0.0, interval_s - (time.monotonic() - started)))
    return verdicts


def _send(client: httpx.Client, message: ViewerChatBody) -> dict[str, Any]:
    for _ in range(RATE_LIMITED_TRIES):
        try:
            reply = client.post("/v1/viewers/chat", json=message.model_dump(exclude_none=True))
        except httpx.HTTPError as exc:
            fail(f"cannot reach {client.base_url}: {exc}")
        if reply.status_code != 429:
            break
        # the key's control rate limit: wait as told, then send the same message again
        time.sleep(min(float(reply.headers.get("Retry-After", "1")), 60.0))
    if reply.status_code != 202:
        fail(f"{reply.status_code} from the desk: {_error_text(reply)}")
    verdict: dict[str, Any] = reply.json()
    return {**verdict, "display_name": message.display_name}


def _error_text(reply: httpx.Response) -> str:
    try:
        return str(reply.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return reply.text[:200]
