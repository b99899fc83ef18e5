"""Embedded model speed per llama.cpp build and buffer setting, measured in one run.

Each configuration runs in a child process of its own (a fresh model load): prompt
evaluation tokens/s over a tick-sized prompt with the KV cache cleared, and generation
tokens/s. The default compares llama.cpp's extra buffer types off (tradecast's default)
and on (the previous setting); ``--compare-site DIR`` adds another llama-cpp-python install
(e.g. a wheel built with -march=native, unpacked into DIR) under the same two settings.

Run: .venv/bin/python bench/llm_cpu.py [--runs N] [--compare-site DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

PROMPT = "Market context:\n" + "\n".join(
    f"Bar {i}: close {61234.5 + 37 * i:.1f}, RSI {31 + (i * 7) % 40}, MACD {(i % 9) - 4}.2"
    for i in range(24)
)


def child(extra_buffer_types: bool, runs: int) -> dict[str, object]:
    """Load the model with the setting asked for and time prompt and generation."""
    import llama_cpp

    from tradecast.llm.llamacpp import default_gguf_path, load_gguf

    llama = load_gguf(default_gguf_path(), 2048, os.cpu_count() or 1, 0, 42, extra_buffer_types)
    model = llama.llama
    prompt_tokens = len(model.tokenize(PROMPT.encode()))
    prompt_rates, gen_rates = [], []
    for _ in range(runs):
        model.reset()
        started = time.perf_counter()
        model.create_completion(PROMPT, max_tokens=1, temperature=0)
        prompt_s = time.perf_counter() - started
        model.reset()
        started = time.perf_counter()
        out = model.create_completion(PROMPT, max_tokens=65, temperature=0)
        generated = out["usage"]["completion_tokens"] - 1
        prompt_rates.append(prompt_tokens / prompt_s)
        gen_rates.append(generated / max(1e-9, time.perf_counter() - started - prompt_s))
    return {
        "build": llama_cpp.llama_print_system_info().decode().strip(),
        "extra_buffer_types": extra_buffer_types,
        "prompt_tokens": prompt_tokens,
        "prompt_tokens_per_s": round(statistics.median(prompt_rates), 1),
        "generation_tokens_per_s": round(statistics.median(gen_rates), 1),
    }


def measure(site: str | None, extra: bool, runs: int) -> dict[str, object]:
    env = dict(os.environ)
    if site:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [site, env.get("PYTHONPATH")]))
    args = [sys.executable, __file__, "--child", "on" if extra else "off", "--runs", str(runs)]
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"extra_buffer_types": extra, "error": f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--compare-site", default=None)
    parser.add_argument("--child", choices=["on", "off"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.stdout.write(json.dumps(child(args.child == "on", args.runs)) + "\n")
        return
    sites = [("installed", None)] + ([("compare", args.compare_site)] if args.compare_site else [])
    for label, site in sites:
        for extra in (False, True):
            row = measure(site, extra, args.runs)
            print(f"{label:<9} extra_buffer_types={'on ' if extra else 'off'} {json.dumps(row)}")


if __name__ == "__main__":
    main()
