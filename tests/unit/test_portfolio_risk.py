"""The portfolio gate and its measurement on hand-picked cases: daily returns from hourly
bars, VaR/CVaR against hand-computed series, correlated groups, and each rule of
check_portfolio."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from tradecast.domain import Candle, Portfolio, Position
from tradecast.risk.portfolio import (
    Target,
    check_portfolio,
    correlated_groups,
    daily_returns,
    historical_var,
    measure,
)
from tradecast.settings import RiskLimits

D = Decimal
NOW = datetime(2024, 4, 15, 12, tzinfo=UTC)
BTC, ETH, SOL = "BTC/USDT", "ETH/USDT", "SOL/USDT"
DAYS = [date(2024, 1, 1) + timedelta(days=i) for i in range(100)]
# Loose book limits: each case tightens only the one it is about.
LOOSE = RiskLimits(
    max_position_pct=D("1"),
    max_gross_exposure_pct=D("10"),
    max_net_exposure_pct=D("10"),
    max_correlated_exposure_pct=D("10"),
    max_var_pct=D("1"),
    max_cvar_pct=D("1"),
)


def series(*values: float, start: int = 0) -> dict[date, float]:
    return {DAYS[start + i]: v for i, v in enumerate(values)}


def wavy(n: int = 60, scale: float = 0.01, phase: int = 0) -> dict[date, float]:
    """A deterministic, non-flat return series (no two phases correlate perfectly)."""
    pattern = [0.3, -1.2, 0.8, 2.1, -0.7, -1.9, 1.4, 0.1, -0.4, 1.0, -2.3, 0.6, 1.7]
    return series(*(scale * pattern[(i * 5 + phase) % len(pattern)] for i in range(n)))


def limits(**changes: Any) -> RiskLimits:
    return LOOSE.model_copy(update={k: D(str(v)) for k, v in changes.items()})


def book(cash: str = "10000", *positions: tuple[str, str, str], **extra: Any) -> Portfolio:
    """A portfolio with ``(symbol, signed quantity, price)`` positions, marked at ``price``."""
    held = tuple(
        Position(
            symbol=s,
            quantity=abs(D(q)),
            avg_price=D(p),
            side="short" if D(q) < 0 else "long",
        )
        for s, q, p in positions
    )
    extra.setdefault("timestamp", NOW)
    return Portfolio(
        cash=D(cash), positions=held, prices={s: D(p) for s, _, p in positions}, **extra
    )


def target(symbol: str, quantity: str, price: str = "100") -> Target:
    return Target(symbol, D(quantity), D(price))


HISTORY = {BTC: wavy(), ETH: wavy(phase=3), SOL: wavy(phase=7)}


# --- daily returns ------------------------------------------------------------------------


def hourly(closes_by_day: list[list[float]], start: datetime) -> list[Candle]:
    candles = []
    at = start
    for day in closes_by_day:
        for close in day:
            price = D(str(close))
            candles.append(
                Candle(timestamp=at, open=price, high=price, low=price, close=price, volume=D(1))
            )
            at += timedelta(hours=1)
    return candles


def test_daily_returns_from_hourly_bars_take_each_utc_days_last_close() -> None:
    day1 = [100.0] * 23 + [110.0]  # the 23:00 bar closes at midnight: day 1's close
    day2 = [120.0] * 23 + [99.0]
    day3 = [50.0] * 23 + [108.9]
    partial = [500.0] * 5  # day 4 is still running: not a day yet
    candles = hourly([day1, day2, day3, partial], datetime(2024, 3, 1, tzinfo=UTC))
    result = daily_returns(list(reversed(candles)), timedelta(hours=1))
    assert list(result) == [date(2024, 3, 2), date(2024, 3, 3)]
    assert result[date(2024, 3, 2)] == pytest.approx(99 / 110 - 1)
    assert result[date(2024, 3, 3)] == pytest.approx(108.9 / 99 - 1)


def test_daily_returns_count_a_day_whole_when_its_last_bar_has_closed() -> None:
    candles = hourly([[100.0] * 24, [90.0] * 24], datetime(2024, 3, 1, tzinfo=UTC))
    # The last bar (23:00 of day 2) closes at midnight: day 2 is whole.
    assert daily_returns(candles, timedelta(hours=1)) == {date(2024, 3, 2): pytest.approx(-0.1)}
    assert daily_returns(candles[:-1], timedelta(hours=1)) == {}  # under 2 whole days


def test_daily_returns_use_utc_days_whatever_the_bars_time_zone() -> None:
    tokyo_midnight_utc = datetime(2024, 3, 1, 9, tzinfo=timezone(timedelta(hours=9)))
    candles = hourly([[100.0] * 24, [80.0] * 24, [60.0] * 24], tokyo_midnight_utc)
    assert list(daily_returns(candles, timedelta(hours=1))) == [
        date(2024, 3, 2),
        date(2024, 3, 3),
    ]


def test_daily_returns_skip_a_gap_instead_of_calling_two_days_one() -> None:
    bars = [(date(2024, 3, 1), 100.0), (date(2024, 3, 2), 110.0), (date(2024, 3, 4), 55.0)]
    candles = [
        Candle(
            timestamp=datetime.combine(d, datetime.min.time(), tzinfo=UTC),
            open=D(str(c)),
            high=D(str(c)),
            low=D(str(c)),
            close=D(str(c)),
            volume=D(1),
        )
        for d, c in bars
    ]
    assert daily_returns(candles, timedelta(days=1)) == {date(2024, 3, 2): pytest.approx(0.1)}


def test_daily_returns_of_nothing_are_empty() -> None:
    assert daily_returns([], timedelta(hours=1)) == {}


# --- VaR and CVaR -------------------------------------------------------------------------


def test_var_and_cvar_on_twenty_scenarios_by_hand() -> None:
    # Twenty days: the worst is -10%, the second worst -6%; the rest are gains.
    returns = series(-0.10, -0.06, *[0.01] * 18)
    var, cvar, days = historical_var({BTC: D(1000)}, {BTC: returns}, 90)
    # n = 20: VaR = -sorted[floor(1)] = 60, CVaR = -mean(sorted[:ceil(1)]) = 100.
    assert days == 20
    assert var == pytest.approx(D(60))
    assert cvar == pytest.approx(D(100))


def test_var_and_cvar_on_forty_scenarios_long_and_short() -> None:
    # Long 1000 BTC-value, short 500 ETH-value; the book's P&L is 1000 r_btc - 500 r_eth.
    btc = [0.0] * 40
    eth = [0.0] * 40
    btc[0], btc[1], btc[2] = -0.05, -0.03, -0.02  # P&L -50, -30, -20
    eth[3] = 0.08  # short ETH rallies: P&L -40
    returns = {BTC: series(*btc), ETH: series(*eth)}
    var, cvar, days = historical_var({BTC: D(1000), ETH: D(-500)}, returns, 90)
    assert days == 40
    # floor(0.05 * 40) = 2: VaR = 30; ceil(2) = 2 worst: CVaR = (50 + 40) / 2 = 45.
    assert var == pytest.approx(D(30))
    assert cvar == pytest.approx(D(45))


def test_var_uses_the_last_window_of_the_common_days_and_ignores_flat_symbols() -> None:
    long_history = series(*[-0.5] * 10, *[0.01] * 19, -0.02, start=0)  # 30 days
    short_history = series(*[0.0] * 20, start=10)  # its 20 days are the last 20
    var, cvar, days = historical_var(
        {BTC: D(100), ETH: D(100), SOL: D(0)},
        {BTC: long_history, ETH: short_history},  # SOL has no history, but no value either
        90,
    )
    assert days == 20  # the -50% days are before ETH's history: not scenarios
    assert var == pytest.approx(D(0)) and cvar == pytest.approx(D(2))
    _, _, windowed = historical_var({BTC: D(1)}, {BTC: long_history}, 25)
    assert windowed == 25


def test_var_needs_twenty_scenarios_and_an_empty_book_risks_nothing() -> None:
    assert historical_var({BTC: D(1000)}, {BTC: series(*[0.01] * 19)}, 90) == (None, None, 19)
    assert historical_var({BTC: D(1000)}, {}, 90) == (None, None, 0)
    assert historical_var({}, {}, 90) == (D(0), D(0), 0)


def test_var_is_never_negative_and_cvar_never_below_it() -> None:
    var, cvar, _ = historical_var({BTC: D(1000)}, {BTC: series(*[0.01] * 25)}, 90)
    assert var == 0 and cvar == 0


# --- correlated groups --------------------------------------------------------------------


def test_identical_series_group_and_an_anticorrelated_one_stays_alone() -> None:
    base = wavy()
    returns = {BTC: base, ETH: dict(base), SOL: {d: -r for d, r in base.items()}}
    assert correlated_groups(returns, [SOL, ETH, BTC], 0.7, 90) == ((BTC, ETH), (SOL,))


def test_groups_link_transitively_and_need_ten_common_days() -> None:
    a, c = wavy(phase=0), wavy(phase=3)  # correlation 0.25: not a pair
    b = {d: a[d] + c[d] for d in a}  # 0.79 with each of them
    returns = {"A/USDT": a, "B/USDT": b, "C/USDT": c}
    assert correlated_groups(returns, ["A/USDT", "C/USDT"], 0.75, 90) == (
        ("A/USDT",),
        ("C/USDT",),
    )
    assert correlated_groups(returns, returns, 0.75, 90) == (("A/USDT", "B/USDT", "C/USDT"),)
    short = {"A/USDT": a, "B/USDT": dict(list(a.items())[:9])}
    assert correlated_groups(short, short, 0.7, 90) == (("A/USDT",), ("B/USDT",))
    assert correlated_groups({}, [BTC, ETH], 0.7, 90) == ((BTC,), (ETH,))


def test_measure_shares_of_equity() -> None:
    base = wavy()
    returns = {BTC: base, ETH: dict(base), SOL: {d: -r for d, r in base.items()}}
    exposure = measure({BTC: D(3000), ETH: D(-1000), SOL: D(2000)}, D(10000), returns, LOOSE)
    assert exposure.gross == D("0.6")
    assert exposure.net == D("0.4")
    assert exposure.group_net == {f"{BTC}+{ETH}": D("0.2")}
    assert exposure.days == 60 and exposure.var is not None and exposure.cvar is not None
    broke = measure({BTC: D(1), ETH: D(-1)}, D(0), returns, LOOSE)
    assert broke.gross == D("Infinity") and broke.net == 0  # no equity: any exposure is too much


# --- check_portfolio ----------------------------------------------------------------------


def check(targets: list[Target], folio: Portfolio, lim: RiskLimits = LOOSE, **kw: Any) -> Any:
    kw.setdefault("now", NOW)
    return check_portfolio(targets, folio, lim, kw.pop("returns", HISTORY), **kw)


def test_targets_within_every_limit_pass_as_asked() -> None:
    verdict = check([target(BTC, "10"), target(ETH, "5")], book("10000"))
    assert verdict.targets == {BTC: D(10), ETH: D(5)}
    assert verdict.reasons == {BTC: (), ETH: ()}
    assert verdict.scale == 1.0 and verdict.notes == ()
    assert verdict.after.gross == D("0.15")


def test_kill_switch_trades_nothing() -> None:
    folio = book("10000", (BTC, "10", "100"))
    verdict = check(
        [target(BTC, "0"), target(ETH, "5")], folio, LOOSE.model_copy(update={"kill_switch": True})
    )
    assert verdict.targets == {BTC: D(10), ETH: D(0)}
    assert all("kill switch" in r[0] for r in verdict.reasons.values())
    assert verdict.scale == 0 and verdict.after == verdict.before


def test_shorts_off_clips_new_shorts_but_buys_back_old_ones() -> None:
    folio = book("10000", (BTC, "5", "100"), (ETH, "-4", "100"))
    verdict = check([target(BTC, "-3"), target(ETH, "-2"), target(SOL, "-1")], folio)
    assert verdict.targets == {BTC: D(0), ETH: D(-2), SOL: D(0)}
    assert "shorts are off" in verdict.reasons[BTC][0]
    assert verdict.reasons[ETH] == ()
    on = check([target(BTC, "-3"), target(SOL, "-1")], folio, shorts_allowed=True)
    assert on.targets == {BTC: D(-3), SOL: D(-1)}


def test_drawdown_lock_blocks_increases_but_not_reductions() -> None:
    folio = book("10000", (BTC, "10", "100"), peak_equity=D("20000"))
    verdict = check([target(BTC, "4"), target(ETH, "5")], folio)
    assert verdict.targets == {BTC: D(4), ETH: D(0)}
    assert verdict.reasons[BTC] == ()
    assert "max drawdown lock" in verdict.reasons[ETH][0]
    assert verdict.scale == 0 and any("max drawdown" in n for n in verdict.notes)


def test_daily_loss_limit_resets_on_a_new_utc_day() -> None:
    folio = book("9000", day_start_equity=D("10000"), timestamp=NOW)
    locked = check([target(ETH, "5")], folio)
    assert locked.targets[ETH] == 0 and "daily loss limit" in locked.reasons[ETH][0]
    tomorrow = check([target(ETH, "5")], folio, now=NOW + timedelta(days=1))
    assert tomorrow.targets[ETH] == 5


def test_cooldown_blocks_increases_in_that_symbol_only() -> None:
    folio = book("10000", (BTC, "10", "100"), stop_outs={BTC: NOW - timedelta(minutes=10)})
    verdict = check([target(BTC, "20"), target(ETH, "5")], folio)
    assert verdict.targets == {BTC: D(10), ETH: D(5)}
    assert "cooldown" in verdict.reasons[BTC][0]
    later = check([target(BTC, "20")], folio, now=NOW + timedelta(minutes=60))
    assert later.targets[BTC] == 20


def test_a_new_symbol_opens_only_under_max_open_positions_after_the_exits() -> None:
    folio = book("10000", (BTC, "10", "100"), ("SOL/USDT", "10", "100"))
    lim = limits(max_open_positions=2)
    full = check([target(BTC, "10"), target(ETH, "5")], folio, lim)
    assert full.targets[ETH] == 0 and "max open positions 2" in full.reasons[ETH][0]
    freed = check([target(BTC, "0"), target(ETH, "5")], folio, lim)  # BTC's exit makes room
    assert freed.targets == {BTC: D(0), ETH: D(5)}


def test_position_cap_clips_an_increase_and_spares_an_old_excess() -> None:
    folio = book("10000", (BTC, "30", "100"))  # 3000 of 13000 equity: 23%
    lim = limits(max_position_pct="0.2")
    verdict = check([target(BTC, "25"), target(ETH, "40")], folio, lim)
    assert verdict.targets[BTC] == 25  # a reduction of a position over the cap is fine
    assert verdict.targets[ETH] == D("26")  # 20% of 13000 at 100
    assert "max position 20%" in verdict.reasons[ETH][0]


def test_gross_cap_scales_every_increase_by_one_factor() -> None:
    verdict = check(
        [target(BTC, "40"), target(ETH, "40")],
        book("10000"),
        limits(max_gross_exposure_pct="0.5"),
    )
    # 8000 asked, 5000 allowed: s = 0.625.
    assert verdict.scale == pytest.approx(0.625, abs=1e-8)
    assert verdict.targets[BTC] == verdict.targets[ETH] == pytest.approx(D(25), abs=D("1e-6"))
    assert verdict.after.gross <= D("0.5")
    assert verdict.notes == ("gross exposure cap 50%: increases scaled to 62.5%",)
    assert "increase scaled to 62.5%" in verdict.reasons[BTC][0]


def test_fees_reduce_equity_after_and_the_scale_accounts_for_them() -> None:
    verdict = check(
        [target(BTC, "50")], book("10000"), limits(max_gross_exposure_pct="0.5"), fee_rate=D("0.01")
    )
    # 100 q <= 0.5 (10000 - 0.01 * 100 q): q <= 5000 / 100.5; the cap holds after the fees.
    assert verdict.after.equity == D(10000) - D("0.01") * verdict.targets[BTC] * 100
    assert verdict.after.gross <= D("0.5")
    assert verdict.targets[BTC] == pytest.approx(D(5000) / D("100.5"), abs=D("1e-6"))


def test_a_short_hedge_is_free_under_the_net_cap() -> None:
    folio = book("10000", (BTC, "40", "100"))  # net 4000 / 14000
    verdict = check(
        [target(ETH, "-30")], folio, limits(max_net_exposure_pct="0.3"), shorts_allowed=True
    )
    assert verdict.targets[ETH] == -30
    assert verdict.after.net == pytest.approx(D(1000) / D(14000))


def test_correlated_group_cap_binds_two_symbols_that_move_together() -> None:
    base = wavy()
    returns = {BTC: base, ETH: dict(base), SOL: {d: -r for d, r in base.items()}}
    verdict = check(
        [target(BTC, "20"), target(ETH, "20"), target(SOL, "20")],
        book("10000"),
        limits(max_correlated_exposure_pct="0.2"),
        returns=returns,
    )
    assert verdict.after.group_net[f"{BTC}+{ETH}"] <= D("0.2")
    assert verdict.scale == pytest.approx(0.5, abs=1e-8)
    assert verdict.notes[0].startswith(f"correlated group {BTC}+{ETH} cap 20%")


def test_var_cap_scales_the_increases() -> None:
    returns = {BTC: series(-0.10, -0.06, *[0.01] * 58)}
    verdict = check(
        [target(BTC, "100")], book("10000"), limits(max_var_pct="0.03"), returns=returns
    )
    # n = 60: VaR = -sorted[floor(3)], a +1% day: 0. CVaR = -mean of the worst ceil(3)
    # (-10%, -6%, +1%) = 5% of the value.
    assert verdict.targets[BTC] == 100
    assert verdict.after.var == 0
    tight = check(
        [target(BTC, "100")], book("10000"), limits(max_cvar_pct="0.025"), returns=returns
    )
    # CVaR = value * 0.05 / equity <= 0.025: value <= 5000.
    assert tight.targets[BTC] == pytest.approx(D(50), abs=D("1e-5"))
    assert tight.after.cvar is not None and tight.after.cvar <= D("0.025")


def test_reductions_alone_over_a_limit_approve_no_increase() -> None:
    folio = book("10000", (BTC, "80", "100"))  # gross 8000 / 18000 = 44%
    verdict = check(
        [target(BTC, "70"), target(ETH, "1")], folio, limits(max_gross_exposure_pct="0.3")
    )
    assert verdict.targets == {BTC: D(70), ETH: D(0)}
    assert verdict.scale == 0
    assert verdict.notes[0].startswith("reductions alone leave gross exposure")
    assert verdict.reasons[BTC] == ()


def test_crossing_zero_is_an_exit_then_a_new_short() -> None:
    folio = book("10000", (BTC, "30", "100"))
    lim = limits(max_position_pct="0.1")
    verdict = check([target(BTC, "-30")], folio, lim, shorts_allowed=True)
    # Exit 30 at full size; the short is capped at 10% of 13000 = 13 units.
    assert verdict.targets[BTC] == D(-13)
    locked = check(
        [target(BTC, "-30")],
        book("10000", (BTC, "30", "100"), peak_equity=D(99999)),
        lim,
        shorts_allowed=True,
    )
    assert locked.targets[BTC] == 0


def test_increases_without_history_for_var_are_refused() -> None:
    returns = {BTC: wavy(), ETH: series(*[0.01, -0.01] * 5)}  # ETH: 10 days
    verdict = check([target(BTC, "10"), target(ETH, "10")], book("10000"), returns=returns)
    assert verdict.targets == {BTC: D(10), ETH: D(0)}
    assert verdict.reasons[ETH][0].startswith("not enough history for VaR")
    assert verdict.after.var is not None


def test_a_new_symbol_without_common_days_is_refused_the_longer_history_kept() -> None:
    returns = {BTC: wavy(30), ETH: {d: 0.01 * (-1) ** i for i, d in enumerate(DAYS[35:70])}}
    verdict = check([target(BTC, "10"), target(ETH, "10")], book("10000"), returns=returns)
    assert verdict.targets == {BTC: D(0), ETH: D(10)}  # ETH has 35 days, BTC 30: ETH first
    assert "in common with the book" in verdict.reasons[BTC][0]


def test_a_held_symbol_without_history_leaves_var_unchecked_with_a_note() -> None:
    returns = {BTC: wavy(), ETH: series(*[0.01] * 5)}
    folio = book("10000", (ETH, "5", "100"))
    verdict = check([target(BTC, "10")], folio, returns=returns)
    assert verdict.targets[BTC] == 10 and verdict.after.var is None
    assert any(n.startswith("VaR unknown") for n in verdict.notes)


def test_the_verdict_is_deterministic_and_validates_its_inputs() -> None:
    folio = book("10000", (BTC, "30", "100"))
    args = ([target(BTC, "50"), target(ETH, "40")], folio, limits(max_gross_exposure_pct="0.6"))
    assert check(*args) == check(*args)
    with pytest.raises(ValueError, match="two targets"):
        check([target(BTC, "1"), target(BTC, "2")], folio)
    with pytest.raises(ValueError, match="timezone"):
        check([target(BTC, "1")], folio, now=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="price"):
        Target(BTC, D(1), D(0))
