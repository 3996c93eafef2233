"""What a benchmark run is asked to do (its size) and what it measured (its figures)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Size:
    calendars: int  # per provider
    burst: int  # customer meetings booked at once
    pushed: int  # meetings found through push notifications
    naive_sample: int  # calendars per provider polled the naive way


FULL = Size(calendars=5_000, burst=1_000, pushed=200, naive_sample=100)
QUICK = Size(calendars=100, burst=40, pushed=10, naive_sample=10)


@dataclass
class Figures:
    """What one run measured; seconds unless named otherwise."""

    store: str
    size: Size
    latency: float
    first_sync: float = 0.0
    languages_read: float = 0.0  # the first sync's start → every owner's language read
    idle: list[float] = field(default_factory=list)
    idle_worker_cpu: list[float] = field(default_factory=list)  # CPU seconds, every thread
    idle_sandbox_cpu: list[float] = field(default_factory=list)  # the emulators' CPU seconds
    idle_round_trips: dict[str, int] = field(default_factory=dict)  # per provider, one cycle
    idle_calls: dict[str, int] = field(default_factory=dict)
    naive_per_calendar: float = 0.0
    burst_total: float = 0.0  # booking seen by the poll's start → last email accepted
    burst_emails: int = 0
    burst_latencies: list[float] = field(default_factory=list)  # poll saw it → email accepted
    channels_opened: float = 0.0
    push_latencies: list[float] = field(default_factory=list)  # booked → email accepted
    push_emails: int = 0
    peak_rss_mb: float = 0.0
    reference_task: list[float] = field(default_factory=list)  # before and after the run

    @property
    def idle_median(self) -> float:
        return statistics.median(self.idle) if self.idle else 0.0

    @property
    def naive_cycle(self) -> float:
        """The naive way's idle cycle over every calendar, from its per-calendar time."""
        return self.naive_per_calendar * 2 * self.size.calendars
