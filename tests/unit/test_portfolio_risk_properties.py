"""Property-based: the portfolio gate never approves a book that breaches a limit.

Random books of 1 to 8 symbols (cash, longs and, with shorts allowed, shorts; prices;
histories of daily returns driven by shared factors, so some symbols correlate, some move
against each other and some have short or no history), random limits, locks, kill switch and
stop-outs, and random targets. Every verdict is checked against the rules: nothing beyond what
was asked, reductions never blocked, no sign flip without shorts, the kill switch, the locks
and the cooldown; and whenever something grows, the book after is within every limit, by
``measure`` and by an independent recomputation.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tradecast.domain import Portfolio, Position
from tradecast.risk.portfolio import PortfolioVerdict, Target, check_portfolio, measure
from tradecast.settings import RiskLimits

D = Decimal
NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)
TODAY = NOW.date()
NAMES = tuple(f"{base}/USDT" for base in ("BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "DOT", "LTC"))
# Decimal rounding (28 digits) may differ between two ways of computing the same share.
SLACK = D("1e-20")


def decimals(low: str, high: str, places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=D(low), max_value=D(high), places=places, allow_nan=False, allow_infinity=False
    )


def share(typical: str, low: str, high: str, places: int = 3) -> st.SearchStrategy[Decimal]:
    """A limit: mostly one of the ``typical`` values (space-separated), else any in range."""
    common = st.sampled_from([D(v) for v in typical.split()])
    return common | common | decimals(low, high, places)


limits_strategy = st.builds(
    RiskLimits,
    max_position_pct=share("0.1 0.25 0.5 1", "0.02", "1"),
    daily_loss_limit_pct=share("0.03 0.1", "0.01", "0.5"),
    max_drawdown_pct=share("0.15 0.3", "0.01", "0.5"),
    cooldown_minutes=st.integers(0, 180),
    kill_switch=st.sampled_from([False] * 9 + [True]),
    max_gross_exposure_pct=share("0.3 0.5 1 2", "0.05", "3"),
    max_net_exposure_pct=share("0.2 0.5 1", "0.05", "3"),
    max_correlated_exposure_pct=share("0.15 0.25 0.6", "0.05", "2"),
    correlation_threshold=share("0.5 0.7 0.9", "0.3", "0.95", 2),
    max_var_pct=share("0.01 0.03 0.08", "0.002", "0.2"),
    max_cvar_pct=share("0.02 0.05 0.1", "0.003", "0.3"),
    risk_window_days=st.sampled_from([30, 60, 90]) | st.integers(20, 120),
)


@dataclass
class Scene:
    """A book, its returns, the limits and the targets to judge."""

    targets: list[Target]
    portfolio: Portfolio
    limits: RiskLimits
    returns: dict[str, dict[date, float]]
    fee_rate: Decimal
    shorts_allowed: bool


def histories(draw: st.DrawFn, symbols: list[str], calm: bool) -> dict[str, dict[date, float]]:
    """Daily returns from a few shared factors: symbols on one factor correlate (a negative
    loading anticorrelates), and each history has its own length, possibly short or none
    (unless ``calm``)."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    days = [TODAY - timedelta(days=i) for i in range(150, 0, -1)]
    factors = [[rng.gauss(0, 0.03) for _ in days] for _ in range(draw(st.integers(1, 3)))]
    returns = {}
    for symbol in symbols:
        lengths = [40, 90, 150] if calm else [0, 15, 19, 20, 40, 90, 150, 150, 150, 150]
        length = draw(st.sampled_from(lengths))
        gap = 0 if calm else draw(st.sampled_from([0] * 8 + [10, 60]))  # a stale history
        factor = factors[draw(st.integers(0, len(factors) - 1))]
        loading = draw(st.sampled_from([1.0, 0.8, -1.0, 0.3]))
        noise = draw(st.sampled_from([0.0, 0.005, 0.03]))
        span = range(len(days) - gap - length, len(days) - gap)
        returns[symbol] = {
            days[i]: loading * factor[i] + rng.gauss(0, noise) for i in span if i >= 0
        }
    return returns


@st.composite
def scenes(draw: st.DrawFn) -> Scene:
    """Half of them calm: no kill switch, lock, cooldown or missing history, shorts allowed
    and mostly increases asked, so that the book's limits are what shrinks them."""
    calm = draw(st.booleans())
    symbols = sorted(draw(st.sets(st.sampled_from(NAMES), min_size=1, max_size=8)))
    shorts_allowed = calm or draw(st.booleans())
    prices = {s: draw(decimals("0.5", "60000", 2)) for s in symbols}
    cash = draw(st.sampled_from([D(10000), D(250000)]) | decimals("0", "100000", 2))
    scale = (cash + 1000) / len(symbols)  # what position sizes are drawn against
    positions = []
    for symbol in symbols:
        weight = draw(st.sampled_from([D(0), D(0)]) | decimals("-0.8", "1", 2))
        weight = weight / 4 if calm else weight
        if weight < 0 and not shorts_allowed:
            weight = -weight
        quantity = (weight * scale / prices[symbol]).quantize(D("0.000001"))
        if quantity:
            side = "short" if quantity < 0 else "long"
            avg = (prices[symbol] * draw(decimals("0.5", "1.5", 2))).quantize(D("0.01"))
            positions.append(
                Position(symbol=symbol, quantity=abs(quantity), avg_price=avg, side=side)
            )
    base = Portfolio(cash=cash, positions=tuple(positions), prices=prices, timestamp=NOW)
    equity = base.equity
    stop_outs = {}
    if not calm and draw(st.booleans()):
        stop_outs[draw(st.sampled_from(symbols))] = NOW - timedelta(
            minutes=draw(st.integers(0, 300))
        )
    portfolio = base.model_copy(
        update={
            "peak_equity": equity * _sometimes(draw, calm, decimals("1", "1.6", 2)),
            "day_start_equity": equity * _sometimes(draw, calm, decimals("0.8", "1.3", 2)),
            "timestamp": NOW - timedelta(hours=draw(st.sampled_from([0, 0, 0, 20]))),
            "stop_outs": stop_outs,
        }
    )
    asked = draw(st.lists(st.sampled_from(symbols), min_size=1, unique=True))
    targets = []
    for symbol in asked:
        current = _holding(portfolio, symbol)
        kind = "new" if calm else draw(st.sampled_from(["scale", "new", "zero", "same"]))
        if kind == "scale" and current:
            quantity = current * draw(decimals("-1.5", "3", 2))
        elif kind == "zero":
            quantity = D(0)
        elif kind == "same":
            quantity = current
        else:
            weight = draw(st.sampled_from([D("0.4"), D("1.2"), D("-0.6")]) | decimals("-2", "3", 2))
            quantity = weight * scale / prices[symbol]
        targets.append(Target(symbol, quantity.quantize(D("0.000001")), prices[symbol]))
    limits = draw(limits_strategy)
    return Scene(
        targets=targets,
        portfolio=portfolio,
        limits=limits.model_copy(update={"kill_switch": False}) if calm else limits,
        returns=histories(draw, symbols, calm),
        fee_rate=draw(st.sampled_from([D(0), D("0.001"), D("0.005")])),
        shorts_allowed=shorts_allowed,
    )


def _sometimes(draw: st.DrawFn, calm: bool, factor: st.SearchStrategy[Decimal]) -> Decimal:
    """A watermark's factor: 1 when calm and three times in four (no lock), else drawn."""
    return draw(factor) if not calm and draw(st.integers(0, 3)) == 0 else D(1)


def _holding(portfolio: Portfolio, symbol: str) -> Decimal:
    return sum((p.signed_quantity for p in portfolio.positions if p.symbol == symbol), D(0))


def _grows(current: Decimal, approved: Decimal) -> bool:
    """Whether ``approved`` holds more exposure than ``current`` in some direction."""
    return abs(approved) > abs(current) or approved * current < 0


def _judge(scene: Scene) -> PortfolioVerdict:
    return check_portfolio(
        scene.targets,
        scene.portfolio,
        scene.limits,
        scene.returns,
        NOW,
        fee_rate=scene.fee_rate,
        shorts_allowed=scene.shorts_allowed,
    )


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scene=scenes())
def test_portfolio_gate_never_approves_a_book_over_a_limit(scene: Scene) -> None:
    verdict = _judge(scene)
    assert verdict == _judge(scene)  # deterministic
    limits, portfolio = scene.limits, scene.portfolio
    assert set(verdict.targets) == {t.symbol for t in scene.targets} == set(verdict.reasons)
    assert 0 <= verdict.scale <= 1
    if 0 < verdict.scale < 1:  # a partial scale names the cap that binds
        assert any(": increases scaled to " in note for note in verdict.notes)
    current = {t.symbol: _holding(portfolio, t.symbol) for t in scene.targets}
    grown = {s for s, q in verdict.targets.items() if _grows(current[s], q)}
    event(f"scale {'0' if not verdict.scale else '1' if verdict.scale == 1 else 'between'}")
    event(f"{len(grown)} grown")

    for t in scene.targets:
        c, a, x = current[t.symbol], t.quantity, verdict.targets[t.symbol]
        # Nothing beyond what was asked, and in the asked direction.
        assert (x - c) * (a - c) >= 0 and abs(x - c) <= abs(a - c)
        if x != a:
            assert verdict.reasons[t.symbol], (t, x)
        if limits.kill_switch:
            assert x == c
            continue
        if a == 0 or (a * c > 0 and abs(a) <= abs(c)):
            assert x == a, "a reduction was blocked"
        if a * c < 0:
            assert x * c <= 0, "the exit of a position crossing zero was blocked"
        if not scene.shorts_allowed:
            assert x >= min(c, D(0)), "a short was opened or grown with shorts off"
        stopped = portfolio.stop_outs.get(t.symbol)
        if stopped and stopped + timedelta(minutes=limits.cooldown_minutes) > NOW:
            assert t.symbol not in grown, "an increase within the cooldown"

    equity = portfolio.cash + sum(
        (p.signed_quantity * portfolio.prices[p.symbol] for p in portfolio.positions), D(0)
    )
    peak = max(equity, portfolio.peak_equity or equity)
    assert portfolio.timestamp is not None
    new_day = NOW.date() > portfolio.timestamp.date()
    day_start = equity if new_day else (portfolio.day_start_equity or equity)
    locked = (
        equity <= 0
        or equity <= peak * (1 - limits.max_drawdown_pct)
        or equity <= day_start * (1 - limits.daily_loss_limit_pct)
    )
    if locked or limits.kill_switch:
        assert not grown and verdict.scale == 0
    if grown or verdict.scale > 0:
        _check_book_after(scene, verdict, grown, equity)


def _check_book_after(
    scene: Scene, verdict: PortfolioVerdict, grown: set[str], equity: Decimal
) -> None:
    """The book after the approved targets is within every limit."""
    limits, portfolio = scene.limits, scene.portfolio
    quantities = {p.symbol: _holding(portfolio, p.symbol) for p in portfolio.positions}
    before = dict(quantities)
    quantities.update(verdict.targets)
    traded = sum(
        (abs(q - before.get(s, D(0))) * portfolio.prices[s] for s, q in quantities.items()), D(0)
    )
    after_equity = equity - scene.fee_rate * traded
    values = {s: q * portfolio.prices[s] for s, q in quantities.items()}
    # Independent: sums of values against the limits times the equity after.
    room = after_equity * (1 + SLACK)
    assert after_equity > 0
    assert sum(abs(v) for v in values.values()) <= limits.max_gross_exposure_pct * room
    assert abs(sum(values.values())) <= limits.max_net_exposure_pct * room
    for symbol in grown:
        assert abs(values[symbol]) <= limits.max_position_pct * room
    # And by measure, which the verdict's own after-book must match.
    measured = measure(values, after_equity, scene.returns, limits)
    assert measured == verdict.after
    assert all(v <= limits.max_correlated_exposure_pct for v in measured.group_net.values())
    for group in measured.groups:
        if len(group) > 1:
            net = abs(sum(values.get(s, D(0)) for s in group))
            assert net <= limits.max_correlated_exposure_pct * room
    if measured.var is None:
        event("VaR unknown")
        window = limits.risk_window_days
        for symbol in grown:  # an increase never hides behind missing history
            assert min(len(scene.returns.get(symbol, {})), window) >= 20
    else:
        assert measured.cvar is not None
        assert measured.var <= limits.max_var_pct and measured.cvar <= limits.max_cvar_pct
    # The lock lines still hold after the costs.
    peak = max(equity, portfolio.peak_equity or equity)
    assert after_equity > peak * (1 - limits.max_drawdown_pct)
