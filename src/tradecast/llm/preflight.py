"""Preflight: load the embedded model and decode once in a child process, before a desk opens.

llama.cpp is native code. On some CPUs it dies of a signal (an AMX Xeon segfaults at the first
decode; a wheel compiled for another host's instruction set gets SIGILL), and a signal kills
the whole Python process: no exception to catch, no message. Probing in a child process turns
that into one clear report (which signal, the CPU flags that matter, the llama.cpp build, the
setting to change) while the parent lives to print it and exit non-zero.

A pass is remembered in the data dir under a key of everything that picks llama.cpp's code
path (build, CPU flags, model file, threads, buffer types), so commands after the first start
at once; any change of those probes again.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from tradecast.errors import LLMError
from tradecast.logs import get_logger
from tradecast.settings import AGENT_ROLES, LLMBackend, LLMConfig

log = get_logger(__name__)

# The instruction sets llama.cpp's x86 kernels dispatch on; what a crash report needs to show.
CPU_FLAGS_THAT_MATTER = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "bmi2",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)
PREFLIGHT_TIMEOUT_S = 180.0
CACHE_FILE = "llm-preflight.json"
NOT_READ = "not read (no role loads llama.cpp)"


@dataclass(frozen=True)
class CpuInfo:
    """The CPU's model name and which of the flags that matter to llama.cpp it has."""

    model: str
    flags: dict[str, bool]


@dataclass(frozen=True)
class PreflightReport:
    """The outcome of one preflight; ``error`` says what happened and what to change."""

    ok: bool
    models: list[str]
    cpu: CpuInfo
    build: str
    seconds: float = 0.0
    signal: str | None = None
    error: str | None = None
    cached: bool = False
    probes: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (what ``doctor --json`` shows under ``llm``)."""
        return asdict(self)


def read_cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    """The CPU model and flags from ``/proc/cpuinfo`` (empty where there is no such file)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return CpuInfo(model="unknown", flags={})
    model, flags = "unknown", set[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model == "unknown":
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    return CpuInfo(model=model, flags={name: name in flags for name in CPU_FLAGS_THAT_MATTER})


_SYSTEM_INFO = (
    "import sys, llama_cpp; "
    "sys.stdout.write(llama_cpp.llama_print_system_info().decode('utf-8', 'replace').strip())"
)


@functools.cache
def _system_info() -> tuple[str, bool]:
    """(llama.cpp's system-info line or why it is unknown, whether reading it worked)."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _SYSTEM_INFO],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"system info unreadable ({exc})", False
    if done.returncode < 0:
        return f"reading its system info died of {_signal_name(-done.returncode)}", False
    if done.returncode != 0:
        return f"system info unreadable ({done.stderr.strip()[-200:]})", False
    return done.stdout.strip(), True


def llama_build_info() -> str:
    """llama-cpp-python's version and llama.cpp's system-info line: the instruction sets the
    build was compiled with.

    Read in a child process: on a CPU the build does not fit, this very call dies of SIGILL.
    """
    try:
        version = importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return "llama-cpp-python is not installed"
    return f"llama-cpp-python {version}: {_system_info()[0]}"


def llama_library_runs() -> bool:
    """Whether this process may call into llama.cpp at all (its system info could be read)."""
    return _system_info()[1]


def embedded_model_paths(config: LLMConfig) -> list[Path]:
    """The distinct GGUF files the llama.cpp roles of ``config`` load (empty: none does).

    Raises:
        LLMError: ``model_missing`` when the default model's package is not installed.
    """
    # imported here: the factory pulls in llama_cpp, which commands without a desk never need
    from tradecast.llm.factory import gguf_path_for

    paths: list[Path] = []
    for role in AGENT_ROLES:
        backend, model = config.for_role(role)
        if backend is LLMBackend.LLAMACPP:
            path = gguf_path_for(config, model)
            if path not in paths:
                paths.append(path)
    return paths


def child_command() -> list[str]:
    """The command that probes the embedded models in a fresh interpreter (it reads the LLM
    settings as JSON on its standard input, so none of them shows in a process list)."""
    return [sys.executable, "-m", "tradecast.llm.preflight"]


def run_preflight(
    config: LLMConfig,
    cache_dir: Path | None = None,
    command: Sequence[str] | None = None,
    timeout_s: float = PREFLIGHT_TIMEOUT_S,
) -> PreflightReport:
    """Probe the embedded models of ``config`` in a child process; never raises.

    Args:
        config: the LLM settings the desk will use.
        cache_dir: where a pass is remembered (None: always probe).
        command: the child to run (default: :func:`child_command`); tests pass others.
        timeout_s: how long the child may take before it counts as hung.

    Returns:
        The report; ``ok`` is True when no role uses llama.cpp or every model decoded.
    """
    cpu = read_cpu_info()
    try:
        models = [str(path) for path in embedded_model_paths(config)]
    except LLMError as exc:
        return PreflightReport(
            ok=False, models=[], cpu=cpu, build=NOT_READ, error=f"{exc.kind}: {exc}"
        )
    if not models:  # no role loads llama.cpp: no child process at all
        return PreflightReport(ok=True, models=[], cpu=cpu, build=NOT_READ)
    build = llama_build_info()
    key = _cache_key(config, models, cpu, build)
    if cache_dir is not None and _cached_pass(cache_dir, key):
        return PreflightReport(ok=True, models=models, cpu=cpu, build=build, cached=True)
    started = time.perf_counter()
    report = _probe_child(list(command or child_command()), timeout_s, config, cpu, build)
    report = replace(report, models=models, seconds=round(time.perf_counter() - started, 2))
    if report.ok and cache_dir is not None:
        _remember_pass(cache_dir, key)
    log.info("llm.preflight", ok=report.ok, signal=report.signal, seconds=report.seconds)
    return report


def _probe_child(
    command: list[str], timeout_s: float, config: LLMConfig, cpu: CpuInfo, build: str
) -> PreflightReport:
    def failed(error: str, signal_name: str | None = None) -> PreflightReport:
        return PreflightReport(
            ok=False, models=[], cpu=cpu, build=build, signal=signal_name, error=error
        )

    try:
        done = subprocess.run(
            command,
            input=config.model_dump_json(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return failed(f"the model probe did not finish within {timeout_s:.0f}s")
    except OSError as exc:
        return failed(f"could not start the model probe: {exc}")
    if done.returncode < 0:
        name = _signal_name(-done.returncode)
        return failed(crash_message(name, cpu, build, config), name)
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        tail = " | ".join(done.stderr.strip().splitlines()[-3:]) or "no output"
        return failed(f"the model probe failed (exit {done.returncode}): {tail}")
    if done.returncode != 0 or "error" in result:
        return failed(str(result.get("error", f"the model probe exited {done.returncode}")))
    return PreflightReport(ok=True, models=[], cpu=cpu, build=build, probes=result["probes"])


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def crash_message(signal_name: str, cpu: CpuInfo, build: str, config: LLMConfig) -> str:
    """One message for a native crash: what died, on which CPU and build, what to change."""
    flags = " ".join(name for name, present in cpu.flags.items() if present) or "unknown"
    if signal_name == "SIGILL":
        advice = (
            "this llama.cpp build uses an instruction this CPU lacks (a wheel compiled on "
            "another host?): rebuild it here with `make clean-llama run`, which builds "
            "for AVX2, or for plain x86-64 on a CPU without it (docs/OPERATIONS.md)"
        )
    elif config.extra_buffer_types:
        advice = (
            "llama.cpp's repacked weight buffers (AMX on Intel Xeons) crash on this CPU: "
            "set TRADECAST_LLM__EXTRA_BUFFER_TYPES=false"
        )
    else:
        advice = (
            "rebuild llama-cpp-python portably (`make clean-llama run`) or use "
            "TRADECAST_LLM__BACKEND=ollama"
        )
    return (
        f"the embedded model crashed with {signal_name} in a probe process, so no desk was "
        f"opened. CPU: {cpu.model} (flags: {flags}). llama.cpp build: {build}. Fix: {advice}."
    )


def _cache_key(config: LLMConfig, models: list[str], cpu: CpuInfo, build: str) -> str:
    files = [(path, *_file_identity(Path(path))) for path in models]
    material = json.dumps(
        [
            files,
            sorted(name for name, present in cpu.flags.items() if present),
            cpu.model,
            build,
            config.extra_buffer_types,
            config.n_threads or os.cpu_count(),
            config.n_ctx,
            config.n_gpu_layers,
        ],
        default=str,
    )
    return hashlib.sha256(material.encode()).hexdigest()


def _file_identity(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (0, 0)
    return (stat.st_size, stat.st_mtime_ns)


def _cached_pass(cache_dir: Path, key: str) -> bool:
    try:
        return json.loads((cache_dir / CACHE_FILE).read_text())["passed"] == key
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _remember_pass(cache_dir: Path, key: str) -> None:
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        (cache_dir / CACHE_FILE).write_text(json.dumps({"passed": key}))
    except OSError as exc:  # a cache that cannot be written only costs a probe next time
        log.warning("llm.preflight_not_cached", error=str(exc))


def require_preflight(config: LLMConfig, cache_dir: Path | None) -> PreflightReport:
    """Run the preflight and raise ``LLMError('backend')`` with its message when it fails."""
    report = run_preflight(config, cache_dir)
    if not report.ok:
        raise LLMError("backend", report.error or "the model probe failed")
    return report


def _probe_in_this_process(config: LLMConfig) -> list[dict[str, Any]]:
    """The child's work: load each embedded model as the desk would and decode with it."""
    from tradecast.llm.factory import create_chat_model
    from tradecast.llm.probe import ProbeAnswer

    results: list[dict[str, Any]] = []
    seen: set[str] = set()
    for role in AGENT_ROLES:
        if config.for_role(role)[0] is not LLMBackend.LLAMACPP:
            continue
        model = create_chat_model(config, role)
        name = str(getattr(model, "model_path", role))
        if name in seen:
            continue
        seen.add(name)
        started = time.perf_counter()
        # A pydantic schema's answer is an object of it (langchain types every structured
        # output as dict | BaseModel, the dict being for dict schemas and include_raw).
        answer = cast(
            ProbeAnswer,
            model.with_structured_output(ProbeAnswer).invoke(
                "BTC/USDT rose 2% on rising volume. BUY, SELL or HOLD?"
            ),
        )
        results.append(
            {
                "model": name,
                "answer": answer.model_dump(),
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
    return results


def system_info_lines() -> list[str]:
    """Two lines for logs: the CPU and its flags that matter, and the llama.cpp build."""
    cpu = read_cpu_info()
    flags = " ".join(f"{name}={'yes' if has else 'no'}" for name, has in cpu.flags.items())
    return [f"cpu: {cpu.model}; {flags}", f"llama.cpp: {llama_build_info()}"]


if __name__ == "__main__":
    if sys.argv[1:] == ["--system-info"]:
        sys.stdout.write("\n".join(system_info_lines()) + "\n")
    else:
        try:
            probes = _probe_in_this_process(LLMConfig.model_validate_json(sys.stdin.read()))
        except LLMError as exc:
            sys.stdout.write(json.dumps({"error": f"{exc.kind}: {exc}"}) + "\n")
            sys.exit(3)
        sys.stdout.write(json.dumps({"probes": probes}) + "\n")
