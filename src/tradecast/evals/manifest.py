"""The run manifest: everything needed to reproduce a run or to tell two runs apart.

Code (git commit, dirty flag, package versions), data (dataset hash), configuration (the
settings with secrets redacted, and the price orders filled at), the models with their
temperature and seed, and the caches.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from tradecast.evals.runner import EvalRun
from tradecast.settings import Settings

PACKAGES = (
    "tradecast",
    "langchain-core",
    "langgraph",
    "chromadb",
    "llama_cpp_python",
    "sentence-transformers",
    "torch",
    "numpy",
    "pandas",
)
_SECRET_FIELDS = ("api_keys", "redis_url", "postgres_url", "chroma_url")


def git_state(where: Path | None = None) -> dict[str, Any]:
    """The commit of the source tree tradecast runs from and whether it has local changes."""
    folder = where or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that shape a run's results."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def redacted_settings(settings: Settings) -> dict[str, Any]:
    """The settings as JSON, with keys and connection strings replaced by '<redacted>'."""
    data = settings.model_dump(mode="json")
    for name in _SECRET_FIELDS:
        if data.get(name):
            data[name] = "<redacted>"
    if data.get("api", {}).get("api_keys"):
        data["api"]["api_keys"] = "<redacted>"
    news = data.get("news", {})
    if news.get("feeds"):  # a feed URL may carry a key in its query
        news["feeds"] = ["<redacted>"] * len(news["feeds"])
    return data


def build_manifest(
    run: EvalRun, *, argv: list[str] | None = None, cache_enabled: bool = True
) -> dict[str, Any]:
    """The manifest of ``run``."""
    llm = run.settings.llm
    return {
        "created_at": datetime.now(UTC).isoformat(),
        "command": list(argv if argv is not None else sys.argv),
        "git": git_state(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "dataset": run.spec.dataset.describe(),
        "window": run.spec.describe(),
        "fill": run.settings.evals.fill,
        "llm": {
            "temperature": llm.temperature,
            "seed": llm.seed,
            "max_tokens": llm.max_tokens,
            "roles": run.models,
        },
        "cache": {"enabled": cache_enabled, "llm": run.cache, "embeddings": run.embeddings},
        "settings": redacted_settings(run.settings),
    }
