"""The persona's voice from the settings (``TRADECAST_VOICE__*``)."""

from __future__ import annotations

from tradecast.settings import VoiceBackend, VoiceConfig
from tradecast.voice.base import SpeechSynthesizer
from tradecast.voice.fallback import FallbackSpeech
from tradecast.voice.http_speech import HttpSpeech
from tradecast.voice.piper import PiperSpeech


def build_speech(config: VoiceConfig) -> SpeechSynthesizer | None:
    """The backend ``config.backend`` names (None: captions only).

    ``piper`` speaks in process; ``http`` asks the speech server and falls back to Piper
    when the server fails. Nothing is loaded or called here: Piper loads its voice on the
    first line (or on :meth:`PiperSpeech.load`).
    """
    if config.backend == VoiceBackend.OFF:
        return None
    piper = PiperSpeech(config.piper_model_path)
    if config.backend == VoiceBackend.PIPER:
        return piper
    return FallbackSpeech(HttpSpeech.from_config(config), piper)
