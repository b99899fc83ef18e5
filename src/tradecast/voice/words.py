"""When each word of a spoken line is heard, for captions that follow the voice.

Piper and the speech servers return audio without word times, so the line's duration is
shared out over its words by their length, with a little more for the pause a comma or a full
stop makes. Readers see each word appear as it is said, within a syllable or two.
"""

from __future__ import annotations

from typing import TypedDict

PAUSE_CHARS = {",": 2.0, ";": 2.5, ":": 2.5, ".": 4.0, "!": 4.0, "?": 4.0}
"""Extra weight (in characters) of the pause after a word ending with these."""
EDGE_SILENCE_S = 0.08
"""Silence a voice leaves before the first word and after the last."""


class WordTime(TypedDict):
    """One word and when it is heard, in seconds from the start of the audio."""

    text: str
    start_s: float
    end_s: float


def word_timings(text: str, duration_s: float) -> list[WordTime]:
    """``text``'s words spread over ``duration_s`` seconds of speech."""
    words = text.split()
    if not words or duration_s <= 0:
        return []
    edge = min(EDGE_SILENCE_S, duration_s / 10)
    spoken = duration_s - 2 * edge
    weights = [len(w) + 1 + PAUSE_CHARS.get(w[-1], 0.0) for w in words]
    per_weight = spoken / sum(weights)
    timings: list[WordTime] = []
    at = edge
    for word, weight in zip(words, weights, strict=True):
        length = weight * per_weight
        timings.append({"text": word, "start_s": round(at, 3), "end_s": round(at + length, 3)})
        at += length
    return timings
