"""llama.cpp's native log output, routed into tradecast's logs.

With ``verbose=False`` llama-cpp-python silences llama.cpp by pointing the process's file
descriptors 1 and 2 (and ``sys.stdout``/``sys.stderr``) at /dev/null while a model loads.
That is process-wide: in a server, every log line other threads write during a load is
lost (the API's shutdown lines included), and two overlapping loads can leave stderr on
/dev/null for good. tradecast instead hands llama.cpp a log callback, so there is nothing to
silence, and turns that redirection off.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading

_NATIVE = logging.getLogger("llama_cpp.native")
# ggml.h's ggml_log_level as this build defines it: NONE, DEBUG, INFO, WARN, ERROR, CONT (the
# rest of the previous line). llama.cpp's INFO is a per-tensor dump, so it stays at debug.
_LEVELS = {
    0: logging.DEBUG,
    1: logging.DEBUG,
    2: logging.DEBUG,
    3: logging.WARNING,
    4: logging.ERROR,
}
_CONTINUE = 5
_installed = threading.Lock()
_callbacks: list[object] = []  # ctypes frees a callback that nobody references
_last_level = [1]


def _leave_streams_alone(disable: bool = True) -> contextlib.nullcontext[None]:
    """Stands in for llama-cpp-python's ``suppress_stdout_stderr``: redirects nothing."""
    return contextlib.nullcontext()


def _forward(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    if level == _CONTINUE:
        level = _last_level[0]
    _last_level[0] = level
    line = text.decode("utf-8", "replace").rstrip()
    if line:
        _NATIVE.log(_LEVELS.get(level, logging.DEBUG), line)


def route_native_logs() -> None:
    """Send llama.cpp's logs to the ``llama_cpp.native`` logger (debug, warning, error) and
    stop llama-cpp-python from redirecting the process's stdout/stderr. Idempotent."""
    with _installed:
        if _callbacks:
            return
        import llama_cpp
        import llama_cpp._internals
        import llama_cpp.llama

        callback = llama_cpp.llama_log_callback(_forward)
        _callbacks.append(callback)
        llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
        for module in (llama_cpp.llama, llama_cpp._internals):
            if hasattr(module, "suppress_stdout_stderr"):
                module.suppress_stdout_stderr = _leave_streams_alone  # type: ignore[attr-defined]
