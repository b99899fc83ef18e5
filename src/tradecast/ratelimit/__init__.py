"""Per-key rate limits: token buckets in this process or in Redis (picked by bootstrap)."""

from tradecast.ratelimit.buckets import LocalRateLimiter, RateLimiter, retry_after

__all__ = ["LocalRateLimiter", "RateLimiter", "retry_after"]
