"""The persona's character card: a small TOML file users can swap."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tradecast.domain import Emotion

KNOWN_EMOTIONS: tuple[str, ...] = get_args(Emotion)


class PersonaCard(BaseModel):
    """Who the persona is and how it talks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=40)
    voice: str = ""
    style: str = Field(default="friendly and concise", max_length=300)
    catchphrases: tuple[str, ...] = ()
    emotions: tuple[str, ...] = KNOWN_EMOTIONS
    max_sentences: int = Field(default=3, ge=1, le=6)
    blocklist: tuple[str, ...] = Field(default=(), description="extra words never to say")

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
        return PersonaCard.model_validate(tomllib.loads(raw))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ValueError(f"invalid persona card {source}: {exc}") from None
