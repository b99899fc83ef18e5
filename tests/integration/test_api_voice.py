"""The persona's voice in the app: a tick's sentences are spoken by the embedded voice
(piper, the joe voice) and announced on the persona stream; the overlay fetches the audio
with a viewer key; the card's own sprites are served; nothing outside them is."""

from __future__ import annotations

import asyncio
import io
import wave
from pathlib import Path

from support.api import OPERATOR, VIEWER, api_settings, auth, context, running_app
from tradecast.domain import StreamEvent

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


async def test_a_ticks_sentences_are_spoken_and_served_as_wav(tmp_path: Path, embedder) -> None:
    settings = api_settings(tmp_path / "data", voice={"backend": "piper"})
    async with running_app(settings, embedder) as (app, client):
        spoken: list[StreamEvent] = []
        context(app).publisher.watch(
            lambda e: spoken.append(e) if e.event in ("speech", "speech_skipped") else None
        )
        info = (await client.get("/v1/persona", headers=auth(VIEWER))).json()
        assert info["voice"] == {
            "enabled": True,
            "backend": "piper",
            "name": "piper:en_US-joe-medium",
        }
        report = (await client.post("/v1/desk/tick", headers=auth(OPERATOR))).json()
        async with asyncio.timeout(60):
            while len(spoken) < len(report["persona"]["lines"]):
                await asyncio.sleep(0.05)
        said = [e.data for e in spoken]
        assert [s["text"] for s in said] == [line["text"] for line in report["persona"]["lines"]]
        first = said[0]
        assert first["decision_id"] == report["decision"]["id"] and first["duration_s"] > 0.3
        audio = await client.get(first["url"], params={"key": VIEWER})
        assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
        with wave.open(io.BytesIO(audio.content)) as wav:
            seconds = wav.getnframes() / wav.getframerate()
            assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        assert abs(seconds - first["duration_s"]) < 0.01
        missing = await client.get("/v1/speech/sp-0000000000000-0000", params={"key": VIEWER})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        bad = await client.get("/v1/speech/..%2F..%2Fjournal", params={"key": VIEWER})
        assert bad.status_code in (404, 422)
        assert (await client.get(first["url"])).status_code == 401


async def test_the_cards_sprites_are_listed_and_served(tmp_path: Path, embedder) -> None:
    folder = tmp_path / "card" / "sprites"
    folder.mkdir(parents=True)
    for name in ("idle.png", "talk.png", "happy_talk.png", "Not Served.png"):
        (folder / name).write_bytes(PNG)
    (folder / "notes.txt").write_text("not a sprite")
    card = tmp_path / "card" / "card.toml"
    card.write_text('name = "Pixel"\n[avatar]\nsprites = "sprites"\n')
    settings = api_settings(tmp_path / "data", persona_card=card)
    async with running_app(settings, embedder) as (_, client):
        info = (await client.get("/v1/persona", params={"key": VIEWER})).json()
        assert info["name"] == "Pixel" and info["voice"]["enabled"] is False
        assert info["avatar"]["sprites"] == ["happy_talk.png", "idle.png", "talk.png"]
        sprite = await client.get("/v1/persona/sprites/talk.png", params={"key": VIEWER})
        assert sprite.status_code == 200 and sprite.content == PNG
        assert sprite.headers["content-type"] == "image/png"
        for name in ("notes.txt", "..%2Fcard.toml", "sad.png"):
            answer = await client.get(f"/v1/persona/sprites/{name}", params={"key": VIEWER})
            assert answer.status_code in (404, 422), name
        off = await client.get("/v1/speech/sp-0000000000000-0000", params={"key": VIEWER})
        assert off.status_code == 404 and "voice is off" in off.json()["error"]["message"]
