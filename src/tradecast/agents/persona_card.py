"""The persona's character card: a small TOML file users can swap."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tradecast.domain import Emotion
from tradecast.voice.base import MAX_SPEED, MIN_SPEED, VoiceStyle

KNOWN_EMOTIONS: tuple[str, ...] = get_args(Emotion)


class EmotionVoice(BaseModel):
    """How one emotion changes the voice (unset: as the card's voice)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    voice: str | None = Field(default=None, max_length=100)
    speed: float | None = Field(default=None, ge=MIN_SPEED, le=MAX_SPEED)


class CardVoice(BaseModel):
    """The persona's voice: which one, how fast, and per-emotion variations."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(
        default="", max_length=100, description="the backend's voice name; '' for its default"
    )
    speed: float = Field(default=1.0, ge=MIN_SPEED, le=MAX_SPEED)
    description: str = Field(default="", max_length=200, description="for people, not the TTS")
    emotions: dict[str, EmotionVoice] = Field(default_factory=dict)

    @field_validator("emotions")
    @classmethod
    def _known(cls, value: dict[str, EmotionVoice]) -> dict[str, EmotionVoice]:
        unknown = sorted(set(value) - set(KNOWN_EMOTIONS))
        if unknown:
            raise ValueError(f"unknown emotion tags {unknown}; known: {list(KNOWN_EMOTIONS)}")
        return value

    def style_for(self, emotion: str | None) -> VoiceStyle:
        """The voice and speed a line with ``emotion`` is spoken in."""
        variation = self.emotions.get(emotion or "") or EmotionVoice()
        return VoiceStyle(
            voice=variation.voice if variation.voice is not None else self.name,
            speed=variation.speed if variation.speed is not None else self.speed,
        )


class CardAvatar(BaseModel):
    """The persona's face on the overlay: the drawn character, or the user's own sprites."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sprites: Path | None = Field(
        default=None,
        description="a folder of PNGs, PNGtuber style (idle.png, talk.png, blink.png, and "
        "optionally <emotion>.png / <emotion>_talk.png); relative to the card file",
    )


class PersonaCard(BaseModel):
    """Who the persona is and how it talks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=40)
    voice: CardVoice = CardVoice()
    avatar: CardAvatar = CardAvatar()
    style: str = Field(default="friendly and concise", max_length=300)
    catchphrases: tuple[str, ...] = ()
    emotions: tuple[str, ...] = KNOWN_EMOTIONS
    max_sentences: int = Field(default=3, ge=1, le=6)
    blocklist: tuple[str, ...] = Field(default=(), description="extra words never to say")

    @field_validator("voice", mode="before")
    @classmethod
    def _voice_text(cls, value: object) -> object:
        """A plain string (older cards) describes the voice for people."""
        return {"description": value} if isinstance(value, str) else value

    @field_validator("emotions")
    @classmethod
    def _known_emotions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(KNOWN_EMOTIONS))
        if unknown:
            raise ValueError(f"unknown emotion tags {unknown}; known: {list(KNOWN_EMOTIONS)}")
        return value


def load_card(path: Path | None = None) -> PersonaCard:
    """Read a card file (the bundled default when ``path`` is None); errors name the file."""
    if path is None:
        text = resources.files("tradecast.agents").joinpath("prompts/persona_default.toml")
        source, raw = "the bundled persona card", text.read_text(encoding="utf-8")
    else:
        source = str(path)
        try:
            raw = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read persona card {source}: {exc.strerror}") from None
    try:
        card = PersonaCard.model_validate(tomllib.loads(raw))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ValueError(f"invalid persona card {source}: {exc}") from None
    return _with_sprites_resolved(card, path)


def _with_sprites_resolved(card: PersonaCard, path: Path | None) -> PersonaCard:
    sprites = card.avatar.sprites
    if sprites is None:
        return card
    folder = sprites if sprites.is_absolute() or path is None else path.parent / sprites
    if not (folder / "idle.png").is_file():
        raise ValueError(f"persona card avatar.sprites: {folder} has no idle.png")
    return card.model_copy(update={"avatar": CardAvatar(sprites=folder.resolve())})
