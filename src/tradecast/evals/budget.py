"""A token budget for eval runs: the run stops cleanly after the tick that goes over it.

TradingAgents users ask for it: a replay with a paid model should not cost more than was
meant. The count may live in shared memory (``multiprocessing.Value``), so the walk-forward
windows running in several processes draw on one budget.
"""

from __future__ import annotations

from typing import Any, Protocol

from tradecast.errors import EvalError

MAX_TOKEN_BUDGET = 10**12
"""The largest budget accepted (a trillion tokens: more than any run here could spend)."""


class TokenBudgetExceeded(EvalError):
    """Raised after the tick whose tokens took the run over its budget."""


class SharedCount(Protocol):
    """An integer shared between processes (``multiprocessing.Value("q")``)."""

    value: int

    def get_lock(self) -> Any:
        """The lock guarding ``value``."""


class _LocalCount:
    """A count for one process, with the same shape as a shared one."""

    def __init__(self) -> None:
        self.value = 0

    def get_lock(self) -> Any:
        from contextlib import nullcontext

        return nullcontext()


class TokenBudget:
    """How many prompt + completion tokens a run may spend, and how many it has."""

    def __init__(self, limit: int, used: SharedCount | None = None) -> None:
        """Args:
            limit: tokens allowed, 1 to ``MAX_TOKEN_BUDGET``.
            used: a count shared with other processes (default: this process only).

        Raises:
            EvalError: the limit is out of range.
        """
        if isinstance(limit, bool) or not 1 <= limit <= MAX_TOKEN_BUDGET:
            raise EvalError(f"a token budget must be 1 to {MAX_TOKEN_BUDGET} (got {limit})")
        self.limit = limit
        self._used: SharedCount = used if used is not None else _LocalCount()

    @property
    def used(self) -> int:
        """Tokens spent so far (by every process sharing the count)."""
        return int(self._used.value)

    def charge(self, tokens: int) -> None:
        """Count ``tokens`` spent.

        Raises:
            TokenBudgetExceeded: the count is now over the limit.
        """
        with self._used.get_lock():
            self._used.value += tokens
            used = self._used.value
        self.check(used)

    def check(self, used: int | None = None) -> None:
        """Raises TokenBudgetExceeded when the budget is spent (the next run must not start)."""
        spent = self.used if used is None else used
        if spent > self.limit:
            raise TokenBudgetExceeded(
                f"token budget exceeded: {spent:,} tokens spent of {self.limit:,}"
            )
