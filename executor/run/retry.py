"""Kestra's ``retry``: when to try a failed task again, and how long to wait first."""

from __future__ import annotations

import random

from executor.flow.model import Retry


def retry_delay(retry: Retry | None, attempt: int, elapsed: float) -> float | None:
    """Seconds to wait before the next attempt, or ``None`` when retries are spent."""
    if retry is None:
        return None
    if retry.max_attempts is not None and attempt >= retry.max_attempts:
        return None
    if retry.type == "constant":
        delay = retry.interval.total_seconds() if retry.interval else 0.0
    elif retry.type == "exponential":
        base = retry.interval.total_seconds() if retry.interval else 1.0
        delay = base * (retry.delayFactor or 2.0) ** (attempt - 1)
        if retry.maxInterval:
            delay = min(delay, retry.maxInterval.total_seconds())
    else:
        low = retry.minInterval.total_seconds() if retry.minInterval else 0.0
        high = retry.maxInterval.total_seconds() if retry.maxInterval else low
        delay = random.uniform(low, high)  # noqa: S311 - jitter, not security
    if retry.maxDuration is not None and elapsed + delay > retry.maxDuration.total_seconds():
        return None
    return delay
