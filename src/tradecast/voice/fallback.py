"""A voice that does not go quiet: the primary backend, and the embedded voice when it fails.

The fallback speaks with its own default voice (the primary's voice names, ``af_bella`` and
the like, mean nothing to Piper) at the same speed, so the line is still heard, in another
voice. Each fallback is logged as ``voice.fallback`` with the reason (never the text).
"""

from __future__ import annotations

import asyncio

from tradecast.errors import SpeechError
from tradecast.logs import get_logger
from tradecast.voice.base import Speech, SpeechSynthesizer, VoiceStyle

log = get_logger(__name__)


class FallbackSpeech:
    """A :class:`~tradecast.voice.base.SpeechSynthesizer` trying ``primary``, then
    ``fallback`` (in its default voice) when the primary raises :class:`SpeechError`.

    ``Speech.voice`` says which one spoke. Empty (or blank) text is refused with
    :class:`SpeechError` without trying either.
    """

    def __init__(self, primary: SpeechSynthesizer, fallback: SpeechSynthesizer) -> None:
        self.primary = primary
        self.fallback = fallback
        self.fallbacks = 0
        """How many lines the fallback spoke."""

    @property
    def name(self) -> str:
        return f"{self.primary.name} or {self.fallback.name}"

    async def synthesize(self, text: str, style: VoiceStyle) -> Speech:
        if not text.strip():
            raise SpeechError("nothing to say: the text is empty")
        try:
            return await self.primary.synthesize(text, style)
        except SpeechError as exc:
            primary_error = _without(str(exc), text)
        log.warning(
            "voice.fallback",
            primary=self.primary.name,
            fallback=self.fallback.name,
            reason=primary_error[:300],
        )
        try:
            speech = await self.fallback.synthesize(text, VoiceStyle(speed=style.speed))
        except SpeechError as exc:
            raise SpeechError(
                f"no voice could speak the line: {self.primary.name}: {primary_error}; "
                f"{self.fallback.name}: {_without(str(exc), text)}"
            ) from exc
        self.fallbacks += 1
        return speech

    async def aclose(self) -> None:
        results = await asyncio.gather(
            self.primary.aclose(), self.fallback.aclose(), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result


def _without(reason: str, text: str) -> str:
    """``reason`` with the spoken line taken out (what a log or error may carry)."""
    return reason.replace(text, "<text>") if text.strip() else reason
