"""Each item's tone from a small packaged classifier, with no LLM call.

VADER (Hutto & Gilbert, 2014; the ``vaderSentiment`` package, MIT) is a rule-based sentiment
model: a 7,500-word valence lexicon with rules for negation, intensifiers, capitals and
punctuation, made for short social-media text; headlines are short. Its lexicon is general
English, so words that carry a market's tone but not a general one (surge, plunge, bullish,
liquidation, hack) are added here on VADER's own -4 to +4 scale. The method name recorded on
each headline says both, so a report says how its sentiment was made.
"""

from __future__ import annotations

from typing import Protocol

from tradecast.domain.news import SentimentLabel

MARKET_WORDS: dict[str, float] = {
    # rises and demand
    "surge": 2.0, "surges": 2.0, "surged": 2.0, "soar": 2.2, "soars": 2.2, "soared": 2.2,
    "rally": 1.8, "rallies": 1.8, "rallied": 1.8, "rebound": 1.4, "rebounds": 1.4,
    "rebounded": 1.4, "bullish": 2.0, "breakout": 1.2, "inflows": 1.2, "inflow": 1.2,
    "adoption": 1.5, "adopts": 1.2, "upgrade": 1.0, "accumulate": 0.8, "accumulating": 0.8,
    "ath": 1.5, "gains": 1.2, "jumps": 1.5, "jumped": 1.5, "climbs": 1.2, "climbed": 1.2,
    # falls, failures and enforcement
    "plunge": -2.4, "plunges": -2.4, "plunged": -2.4, "plummet": -2.6, "plummets": -2.6,
    "plummeted": -2.6, "tumble": -2.0, "tumbles": -2.0, "tumbled": -2.0, "slump": -2.0,
    "slumps": -2.0, "slumped": -2.0, "crash": -2.5, "crashes": -2.5, "crashed": -2.5,
    "selloff": -2.0, "sell-off": -2.0, "bearish": -2.0, "liquidation": -1.6,
    "liquidations": -1.6, "liquidated": -1.8, "hack": -2.4, "hacks": -2.4, "hacked": -2.4,
    "exploit": -2.2, "exploited": -2.2, "outflows": -1.2, "outflow": -1.2, "outage": -1.6,
    "halts": -1.5, "halted": -1.5, "delist": -2.0, "delists": -2.0, "delisted": -2.0,
    "insolvency": -2.6, "insolvent": -2.6, "bankruptcy": -2.6, "crackdown": -2.0,
    "lawsuit": -1.6, "sues": -1.5, "sued": -1.5, "dump": -1.8, "dumps": -1.8,
    "capitulation": -2.0, "ponzi": -2.5, "drops": -1.2, "dropped": -1.2, "slides": -1.2,
    "slid": -1.2, "sinks": -1.5, "sank": -1.5, "falls": -1.0, "fell": -1.0,
}  # fmt: skip

NEUTRAL_BAND = 0.05
"""VADER's own threshold: a compound score within it is neutral."""


class SentimentScorer(Protocol):
    """Scores a text's tone from -1 (very negative) to +1 (very positive)."""

    @property
    def method(self) -> str:
        """What made the score (recorded on every headline)."""
        ...

    def score(self, text: str) -> float:
        """The tone of ``text``, from -1 to +1."""
        ...


class VaderSentiment:
    """VADER's compound score with the market words above added to its lexicon."""

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()
        self._analyzer.lexicon.update(MARKET_WORDS)

    @property
    def method(self) -> str:
        return "vader-3.3.2+market-words"

    def score(self, text: str) -> float:
        compound = float(self._analyzer.polarity_scores(text)["compound"])
        return max(-1.0, min(1.0, round(compound, 4)))


def label(score: float) -> SentimentLabel:
    """positive, negative or neutral, by VADER's threshold."""
    if score >= NEUTRAL_BAND:
        return "positive"
    if score <= -NEUTRAL_BAND:
        return "negative"
    return "neutral"
