"""compose.yaml as an operator relies on it: the app's environment is settings tradecast
accepts, two replicas behind one published port, health checks, the GPU for Ollama."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tradecast.settings import load_settings

COMPOSE = Path(__file__).resolve().parents[2] / "compose.yaml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _resolved(value: str) -> str:
    """``${NAME:-default}`` / ``${NAME:?message}`` as compose would fill them in a test run."""
    return re.sub(
        r"\$\{(\w+)(?::-([^}]*)|:\?[^}]*)?\}", lambda m: m.group(2) or f"test-{m.group(1)}", value
    )


def test_compose_app_environment_is_valid_tradecast_settings(compose, monkeypatch):
    env = compose["services"]["app"]["environment"]
    env = {name: _resolved(str(value)) for name, value in env.items()}
    env["TRADECAST_API_KEYS"] = "viewer:v-key-123456,operator:o-key-123456,admin:a-key-123456"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.postgres_url and settings.postgres_url.startswith("postgresql://tradecast:")
    assert settings.chroma_url == "http://chroma:8000"
    assert settings.llm.backend.value == "ollama"
    assert settings.llm.ollama_base_url == "http://ollama:11434"
    assert settings.llm.persona.model, "the persona has its own model"
    unknown = [n for n in env if n.startswith("TRADECAST_") and not _known(n)]
    assert unknown == [], f"compose sets variables tradecast ignores: {unknown}"


def _known(name: str) -> bool:
    from tradecast.settings import Settings

    parts = name.removeprefix("TRADECAST_").lower().split("__")
    model: type = Settings
    for part in parts:
        fields = model.model_fields
        if part not in fields:
            return False
        annotation = fields[part].annotation
        model = annotation if isinstance(annotation, type) else type(None)
    return True


def test_compose_runs_two_app_replicas_behind_one_port(compose):
    services = compose["services"]
    assert services["app"]["deploy"]["replicas"] == 2
    assert "ports" not in services["app"], "replicas are reached through the proxy only"
    assert [p.split(":")[-1] for p in services["proxy"]["ports"]] == ["8000"]
    nginx = (COMPOSE.parent / "deploy" / "nginx.conf").read_text()
    assert "server app:8000" in nginx and "proxy_buffering off" in nginx


def test_compose_checks_health_and_reserves_the_gpu(compose):
    services = compose["services"]
    for name in ("proxy", "app", "redis", "postgres", "ollama"):
        assert services[name]["healthcheck"]["test"], name
    assert "/readyz" in " ".join(services["app"]["healthcheck"]["test"])
    devices = services["ollama"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    pull = services["ollama-pull"]
    assert pull["restart"] == "no" and "ollama pull" in " ".join(pull["command"])
    waits = services["app"]["depends_on"]
    assert waits["ollama-pull"]["condition"] == "service_completed_successfully"
    assert {"redis-data", "postgres-data", "chroma-data", "ollama-models"} <= set(
        compose["volumes"]
    )
