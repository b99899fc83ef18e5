"""The preflight probes the embedded model in a child process: a native crash there is one
clear message and a non-zero exit, never a dead server; the real model passes it."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tradecast.cli import app
from tradecast.llm import preflight
from tradecast.llm.preflight import llama_build_info, read_cpu_info, run_preflight
from tradecast.settings import LLMConfig


def _dies_of(signal_name: str) -> list[str]:
    """A child that really dies of ``signal_name``, as llama.cpp does on a bad CPU path."""
    code = f"import os, signal; os.kill(os.getpid(), signal.{signal_name})"
    return [sys.executable, "-c", code]


PASSES = [sys.executable, "-c", "print('{\"probes\": []}')"]


def test_a_segfaulting_model_is_one_clear_message():
    report = run_preflight(LLMConfig(), command=_dies_of("SIGSEGV"))
    assert report.ok is False
    assert report.signal == "SIGSEGV"
    message = report.error or ""
    assert "crashed with SIGSEGV" in message
    assert f"CPU: {read_cpu_info().model}" in message
    assert "avx2" in message or "unknown" in message  # the flags that matter, where known
    assert llama_build_info() in message
    assert "make clean-llama run" in message and "TRADECAST_LLM__BACKEND=ollama" in message


def test_with_extra_buffer_types_on_the_advice_is_to_turn_them_off():
    report = run_preflight(LLMConfig(extra_buffer_types=True), command=_dies_of("SIGSEGV"))
    assert "TRADECAST_LLM__EXTRA_BUFFER_TYPES=false" in (report.error or "")


def test_an_illegal_instruction_says_the_build_does_not_fit_this_cpu():
    report = run_preflight(LLMConfig(), command=_dies_of("SIGILL"))
    assert report.signal == "SIGILL"
    assert "instruction this CPU lacks" in (report.error or "")


def test_a_pass_is_remembered_until_something_that_picks_the_code_path_changes(tmp_path: Path):
    assert run_preflight(LLMConfig(), tmp_path, command=PASSES).cached is False
    again = run_preflight(LLMConfig(), tmp_path, command=_dies_of("SIGSEGV"))
    assert again.ok and again.cached
    changed = run_preflight(LLMConfig(extra_buffer_types=True), tmp_path, _dies_of("SIGSEGV"))
    assert changed.ok is False and changed.signal == "SIGSEGV"


def test_no_embedded_role_means_nothing_to_probe():
    report = run_preflight(LLMConfig(backend="ollama"), command=_dies_of("SIGSEGV"))
    assert report.ok and report.models == []


@pytest.fixture
def crashing_child(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(preflight, "child_command", lambda: _dies_of("SIGSEGV"))
    monkeypatch.setenv("TRADECAST_DATA_DIR", str(tmp_path))


@pytest.mark.usefixtures("crashing_child")
def test_doctor_json_reports_the_crash_with_the_cpu():
    done = CliRunner().invoke(app, ["doctor", "--json"])
    assert done.exit_code == 1
    llm = json.loads(done.stdout)["llm"]
    assert llm["ok"] is False and llm["signal"] == "SIGSEGV"
    assert "crashed with SIGSEGV" in llm["error"]
    assert set(llm["cpu"]["flags"]) >= {"avx2", "avx512f", "amx_tile"} or not llm["cpu"]["flags"]


@pytest.mark.usefixtures("crashing_child")
@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--port", "1"],
        ["tick", "--symbol", "BTC/USDT", "--at", "2021-03-01T12:00:00Z"],
        ["run", "--symbol", "BTC/USDT", "--ticks", "1"],
        ["eval", "--dataset", "btc-usdt-1h", "--start", "2021-02-01", "--end", "2021-02-02"],
    ],
)
def test_commands_that_open_a_desk_refuse_to_when_the_model_crashes(
    args: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    opened: list[str] = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: opened.append("server"))
    if args[0] == "eval":
        args = [*args, "--out", str(tmp_path / "eval")]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 1
    assert "crashed with SIGSEGV" in done.stderr
    assert "TRADECAST_LLM__BACKEND=ollama" in done.stderr
    assert opened == []


def test_the_installed_llama_cpp_build_is_portable():
    """scripts/install-llama.sh builds for AVX2 without -march=native: no AVX-512 and no
    AMX code that a CPU other than the build host may lack or crash on."""
    build = llama_build_info()
    assert "AVX2 = 1" in build
    assert "AVX512 = 1" not in build and "AMX" not in build


@pytest.mark.slow
def test_the_real_model_passes_the_preflight(tmp_path: Path):
    report = run_preflight(LLMConfig(), tmp_path)
    assert report.ok, report.error
    assert report.models and report.models[0].endswith(".gguf")
    assert report.probes[0]["answer"]["action"] in ("BUY", "SELL", "HOLD")
    assert run_preflight(LLMConfig(), tmp_path).cached


@pytest.mark.slow
def test_the_real_model_on_a_cpu_without_avx2_is_a_sigill_message():
    """The real llama.cpp build, run under qemu's user-mode emulation of a Sandy Bridge (AVX,
    no AVX2): it dies of SIGILL as on an old host, and the preflight says so."""
    qemu = shutil.which("qemu-x86_64")
    if qemu is None or platform.machine() != "x86_64":
        if os.environ.get("CI") == "true":
            pytest.fail("qemu-user is missing: .ci/run installs it")
        pytest.skip("needs qemu-user on an x86-64 host")
    command = [qemu, "-cpu", "SandyBridge", sys.executable, "-m", "tradecast.llm.preflight"]
    report = run_preflight(LLMConfig(), command=command)
    assert report.ok is False and report.signal == "SIGILL", report.error
    assert "instruction this CPU lacks" in (report.error or "")
