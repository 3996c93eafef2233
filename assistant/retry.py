"""How long to wait before trying a provider again: one policy for every provider.

Exponential backoff with full jitter (so many workers throttled at once do not retry in step),
never shorter than a Retry-After the provider sent. The retry loop itself is tenacity's; the
batched adapters reuse `delay` for their rounds of failed parts.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import tenacity

from assistant.errors import TransientProviderError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # tries in all, the first included
    initial_seconds: float = 0.5
    max_seconds: float = 30.0  # the backoff's ceiling; a longer Retry-After is still honoured
    sleep: Callable[[float], None] = time.sleep
    random: Callable[[], float] = field(default=random.random)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the attempt-th failure (1-based)."""
        ceiling = min(self.max_seconds, self.initial_seconds * 2 ** (attempt - 1))
        return max(retry_after or 0.0, ceiling * self.random())

    def call(self, action: Callable[[], T], describe: str = "request") -> T:
        """action(), retried while it raises TransientProviderError; then the last error."""
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(TransientProviderError),
            sleep=self.sleep,
            before_sleep=lambda state: _log_retry(describe, state),
            reraise=True,
        )
        return retrying(action)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        return self.delay(state.attempt_number, retry_after)


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header's delay in seconds; None when absent or an HTTP date.

    Both providers send seconds; for a date the backoff alone decides.
    """
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def _log_retry(describe: str, state: tenacity.RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning("%s failed (%s); try %d in %.1f s", describe, error, state.attempt_number + 1, wait)
