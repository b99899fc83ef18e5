"""Walk-forward windows, ablated settings, the token budget and costs: the pure parts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tradecast.errors import EvalError
from tradecast.evals.ablations import (
    ABLATIONS,
    STRATEGY_ABLATIONS,
    ablated_settings,
    parse_ablations,
    reads_memory,
)
from tradecast.evals.budget import TokenBudget, TokenBudgetExceeded
from tradecast.evals.costs import Prices, cost_summary
from tradecast.evals.datasets import DatasetError, resolve_dataset
from tradecast.evals.walkforward import plan_windows
from tradecast.settings import DeskConfig, load_settings

START = datetime(2021, 1, 4, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def dataset():
    return resolve_dataset("btc-usdt-1h")


def test_rolling_windows_train_on_the_span_just_before_each_test(dataset):
    windows = plan_windows(
        dataset, START, START + 10 * DAY, timedelta(hours=4), train=2 * DAY, test=3 * DAY
    )
    assert len(windows) == 2  # tests start on day 2 and 5; a third would end after day 10
    first, second = windows
    assert first.train == (START, START + 2 * DAY - timedelta(hours=4))
    assert first.test == (START + 2 * DAY, START + 5 * DAY - timedelta(hours=4))
    assert second.train == (START + 3 * DAY, START + 5 * DAY - timedelta(hours=4))
    assert second.test[0] == first.test[1] + timedelta(hours=4), "test windows tile the span"
    for window in windows:
        assert window.train is not None and window.train[1] < window.test[0]


def test_anchored_windows_train_on_everything_since_the_start(dataset):
    windows = plan_windows(
        dataset, START, START + 10 * DAY, DAY, train=2 * DAY, test=2 * DAY, anchored=True
    )
    assert [w.train[0] for w in windows if w.train] == [START] * len(windows) == [START] * 4
    assert [w.train[1] for w in windows if w.train] == [START + (1 + 2 * i) * DAY for i in range(4)]


@pytest.mark.parametrize(
    ("lengths", "message"),
    [
        ({"train": 2 * DAY, "test": timedelta(hours=5)}, "multiple of --every"),
        ({"train": timedelta(0), "test": DAY}, "positive multiple"),
        ({"train": DAY, "test": 2 * DAY, "step": DAY}, "overlapping test windows"),
        ({"train": 30 * DAY, "test": 30 * DAY}, "no window fits"),
    ],
)
def test_bad_window_lengths_are_refused_with_a_reason(dataset, lengths, message):
    with pytest.raises(EvalError, match=message):
        plan_windows(dataset, START, START + 10 * DAY, timedelta(hours=4), **lengths)


def test_windows_outside_the_data_are_refused(dataset):
    with pytest.raises(DatasetError, match="after the data"):
        plan_windows(
            dataset,
            datetime(2030, 1, 1, tzinfo=UTC),
            datetime(2030, 3, 1, tzinfo=UTC),
            DAY,
            train=DAY,
            test=DAY,
        )


def test_ablations_change_only_what_they_name():
    settings = load_settings()
    assert parse_ablations("all") == ABLATIONS
    assert parse_ablations("no-memory, full") == ("full", "no_memory")
    with pytest.raises(EvalError, match="unknown ablation no_persona"):
        parse_ablations("full,no_persona")
    assert ablated_settings(settings, "full") is settings
    rules = ablated_settings(settings, "rules_only").desk
    assert rules.ablate == {"analyst", "risk", "trader"} and rules.memory_k == 0
    assert ablated_settings(settings, "no_trader").desk.ablate == {"trader"}
    assert not reads_memory(ablated_settings(settings, "no_memory"))
    assert reads_memory(ablated_settings(settings, "no_analyst"))
    with pytest.raises(ValueError):
        DeskConfig(ablate=frozenset({"rules"}))  # type: ignore[arg-type]
    # a silent persona is a study of the decisions alone; rules_only keeps it talking
    assert DeskConfig(ablate=frozenset({"persona"})).ablate == {"persona"}


def test_strategy_ablations_switch_off_one_part_each():
    settings = load_settings()
    assert parse_ablations("strategies") == STRATEGY_ABLATIONS
    assert STRATEGY_ABLATIONS[0] == "full" and "rules_only" not in STRATEGY_ABLATIONS
    strategy = settings.desk.strategy
    without_trend = ablated_settings(settings, "no_trend").desk.strategy
    assert without_trend.strategies == strategy.strategies - {"trend"}
    assert not ablated_settings(settings, "fixed_weights").desk.strategy.adaptive_weights
    assert ablated_settings(settings, "sizing_kelly").desk.strategy.sizing == "kelly"
    assert ablated_settings(settings, "exits_trader").desk.strategy.exits == "trader"
    kelly = ablated_settings(settings, "sizing_kelly").desk.strategy
    assert kelly.model_copy(update={"sizing": strategy.sizing}) == strategy  # nothing else


def test_no_news_is_asked_for_by_name_and_needs_a_news_source(tmp_path):
    assert "no_news" not in parse_ablations("all")
    assert parse_ablations("no_news,full") == ("full", "no_news")
    with pytest.raises(EvalError, match="needs a news source"):
        ablated_settings(load_settings(), "no_news")
    news = tmp_path / "news.jsonl"
    with_news = load_settings(news={"file": news})
    assert not ablated_settings(with_news, "no_news").news.enabled()
    assert ablated_settings(with_news, "no_news").desk == with_news.desk
    assert not ablated_settings(with_news, "rules_only").news.enabled()
    assert ablated_settings(with_news, "no_memory").news.file == news


def test_the_token_budget_raises_once_it_is_exceeded():
    budget = TokenBudget(100)
    budget.charge(60)
    budget.charge(40)  # exactly spent is not over
    with pytest.raises(TokenBudgetExceeded, match="101 tokens spent of 100"):
        budget.charge(1)
    for bad in (0, -5, 10**13, True):
        with pytest.raises(EvalError):
            TokenBudget(bad)


def test_cost_counts_training_and_prices_the_excess_return():
    windows = [
        {
            "train_decisions": 2,
            "test_decisions": 2,
            "train_prompt_tokens": 1000,
            "test_prompt_tokens": 1000,
            "test_completion_tokens": 200,
            "test_llm_seconds": 4.0,
        },
        {
            "train_decisions": 2,
            "test_decisions": 2,
            "train_prompt_tokens": 1000,
            "test_prompt_tokens": 1000,
            "test_completion_tokens": 200,
            "test_llm_seconds": 4.0,
        },
    ]
    prices = Prices.of(2.0, 10.0, 1e6)
    cost = cost_summary(windows, prices, excess_return=0.02)
    assert cost["decisions"] == 8 and cost["prompt_tokens"] == 4000
    assert cost["money"] == pytest.approx((4000 * 2 + 400 * 10) / 1e6)
    assert cost["money_per_decision"] == pytest.approx(cost["money"] / 8)
    assert cost["money_per_window"] == pytest.approx(cost["money"] / 2)
    assert cost["money_per_point_of_excess_return"] == pytest.approx(cost["money"] / 2)
    assert cost["llm_seconds_per_decision"] == 1.0
    assert (
        cost_summary(windows, prices, excess_return=-0.01)["money_per_point_of_excess_return"]
        is None
    )
    assert cost_summary(windows, Prices(), 0.02)["money"] is None
    with pytest.raises(EvalError):
        Prices.of(-1.0, None, 1e6)
    with pytest.raises(EvalError):
        Prices.of(None, 3.0, 1e6)
