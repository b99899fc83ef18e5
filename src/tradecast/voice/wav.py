"""WAV in and out: 16-bit PCM, little-endian, the only audio the voice pipeline handles.

:func:`wav_bytes` writes a mono RIFF/WAVE file; :func:`read_wav` reads one back strictly
(16-bit PCM only; stereo is mixed down to mono) and copes with what streaming servers send:
a data chunk whose size field is 0xFFFFFFFF (or anything larger than what arrived) yields the
frames that are there, and a trailing half frame is dropped.
"""

from __future__ import annotations

import io
import wave

import numpy as np

from tradecast.errors import SpeechError

SAMPLE_WIDTH = 2
"""Bytes per sample: 16-bit PCM."""


def wav_bytes(pcm16: bytes, sample_rate: int) -> bytes:
    """A complete mono 16-bit PCM WAV file of ``pcm16`` (little-endian samples)."""
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, not {sample_rate}")
    if len(pcm16) % SAMPLE_WIDTH:
        raise ValueError(f"16-bit PCM has an even number of bytes, not {len(pcm16)}")
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(SAMPLE_WIDTH)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm16)
    return out.getvalue()


def read_wav(data: bytes) -> tuple[bytes, int]:
    """The mono 16-bit PCM samples of a WAV file and its sample rate.

    Raises:
        SpeechError: ``data`` is not a 16-bit PCM WAV file with one or two channels (the
            message says what it is instead).
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SpeechError(f"not a WAV file: no RIFF/WAVE header in its {len(data)} bytes")
    try:
        with wave.open(io.BytesIO(data), "rb") as reader:
            channels = reader.getnchannels()
            width = reader.getsampwidth()
            rate = reader.getframerate()
            if width != SAMPLE_WIDTH:
                raise SpeechError(f"WAV has {8 * width}-bit samples; only 16-bit PCM is read")
            if channels not in (1, 2):
                raise SpeechError(f"WAV has {channels} channels; only mono or stereo is read")
            if rate <= 0:
                raise SpeechError(f"WAV has a sample rate of {rate}")
            # A streamed WAV says 0xFFFFFFFF bytes of data: read what is there, not that.
            frames = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError) as exc:
        raise SpeechError(f"not a readable 16-bit PCM WAV file: {exc}") from None
    frame_size = channels * SAMPLE_WIDTH
    frames = frames[: len(frames) - len(frames) % frame_size]
    if channels == 2:
        stereo = np.frombuffer(frames, dtype="<i2").reshape(-1, 2).astype(np.int32)
        frames = (stereo.sum(axis=1) // 2).astype("<i2").tobytes()
    return frames, rate


def duration_s(pcm16: bytes, sample_rate: int) -> float:
    """How long mono 16-bit PCM samples play at ``sample_rate``."""
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, not {sample_rate}")
    return len(pcm16) // SAMPLE_WIDTH / sample_rate
