"""Run the installed `tradecast` command as a user would: its own process, a fresh data dir,
none of this process's TRADECAST_ settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TRADECAST = str(Path(sys.executable).with_name("tradecast"))


def run_tradecast(
    tmp_path: Path, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    """``tradecast ARGS`` with ``TMP/data`` as its data dir; returns the finished process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADECAST_")}
    env["TRADECAST_DATA_DIR"] = str(tmp_path / "data")
    env.update(extra_env or {})
    return subprocess.run(
        [TRADECAST, *args], capture_output=True, text=True, env=env, timeout=timeout
    )
