"""What every text-to-speech backend provides, and what it returns.

Backends (:mod:`tradecast.voice.piper` in process, :mod:`tradecast.voice.http_speech` for an
OpenAI-compatible speech server) are picked in :mod:`tradecast.bootstrap`; the speech
pipeline (:mod:`tradecast.voice.speaker`) only sees this Protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

MIN_SPEED, MAX_SPEED = 0.5, 2.0


@dataclass(frozen=True)
class VoiceStyle:
    """How a line is spoken: which voice (backend-specific; "" for the backend's default) and
    how fast (1.0 is the voice's own pace)."""

    voice: str = ""
    speed: float = 1.0

    def __post_init__(self) -> None:
        if not MIN_SPEED <= self.speed <= MAX_SPEED:
            raise ValueError(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, not {self.speed}")


@dataclass(frozen=True)
class Speech:
    """One synthesised line: a complete WAV file (RIFF, 16-bit PCM, mono)."""

    wav: bytes
    sample_rate: int
    duration_s: float
    voice: str
    """What spoke it, e.g. ``piper:en_US-joe-medium`` or ``http:kokoro/af_bella``."""


class SpeechSynthesizer(Protocol):
    """Text in, speech out."""

    @property
    def name(self) -> str:
        """The backend and its default voice, for logs and events."""
        ...

    async def synthesize(self, text: str, style: VoiceStyle) -> Speech:
        """Speak ``text`` (one sentence, already checked) in ``style``.

        Args:
            text: what to say; plain text, at most a few hundred characters.
            style: the voice and the speed.

        Returns:
            The speech as a WAV file with its duration.

        Raises:
            SpeechError: the backend could not speak it (unreachable, timed out, bad answer).
        """
        ...

    async def aclose(self) -> None:
        """Release what the backend holds (connections, the loaded voice)."""
        ...
