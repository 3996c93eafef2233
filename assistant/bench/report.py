"""The benchmark's table: each figure beside its target, per store, and whether it was met."""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from assistant.bench.figures import Figures


@dataclass(frozen=True)
class Target:
    name: str
    wanted: str
    measure: Callable[[Figures], float]
    met: Callable[[Figures], bool]
    unit: str = "s"


def p95(values: list[float]) -> float:
    if not values:
        return math.inf
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def _per_round_trip(figures: Figures, provider: str, per: int) -> bool:
    return figures.idle_round_trips.get(provider, math.inf) <= math.ceil(figures.size.calendars
                                                                          / per)


TARGETS = (
    Target("idle cycle, every calendar polled", "≤ 3 s", lambda f: f.idle_median,
           lambda f: f.idle_median <= 3),
    Target("API calls in one idle cycle, per calendar", "≤ 1",
           lambda f: sum(f.idle_calls.values()) / (2 * f.size.calendars),
           lambda f: sum(f.idle_calls.values()) <= 2 * f.size.calendars, unit=""),
    Target("Google calendars per round trip", "≥ 50",
           lambda f: f.size.calendars / max(1, f.idle_round_trips.get("google", 0)),
           lambda f: _per_round_trip(f, "google", 50), unit=""),
    Target("Outlook mailboxes per round trip", "≥ 20",
           lambda f: f.size.calendars / max(1, f.idle_round_trips.get("microsoft", 0)),
           lambda f: _per_round_trip(f, "microsoft", 20), unit=""),
    Target("naive idle cycle (one request at a time)", "for the ratio", lambda f: f.naive_cycle,
           lambda f: True),
    Target("faster than the naive way", "≥ 100×",
           lambda f: f.naive_cycle / f.idle_median if f.idle_median else 0.0,
           lambda f: f.idle_median > 0 and f.naive_cycle / f.idle_median >= 100, unit="×"),
    Target("burst: all detected and emailed", "≤ 15 s", lambda f: f.burst_total,
           lambda f: f.burst_emails == f.size.burst and f.burst_total <= 15),
    Target("burst: poll saw it → SMTP accepted, p95", "< 5 s",
           lambda f: p95(f.burst_latencies), lambda f: p95(f.burst_latencies) < 5),
    Target("push: booked → SMTP accepted, p95", "< 2 s", lambda f: p95(f.push_latencies),
           lambda f: f.push_emails == f.size.pushed and p95(f.push_latencies) < 2),
    Target("peak memory of the worker (RSS)", "< 300 MB", lambda f: f.peak_rss_mb,
           lambda f: f.peak_rss_mb < 300, unit="MB"),
)

# Figures shown for understanding, with no target of their own.
FACTS: tuple[tuple[str, Callable[[Figures], float], str], ...] = (
    ("first sync (full listings, every token minted)", lambda f: f.first_sync, "s"),
    ("every organiser's language read, from the first sync's start",
     lambda f: f.languages_read, "s"),
    ("idle cycle: the worker's CPU time", lambda f: _median(f.idle_worker_cpu), "s"),
    ("idle cycle: the emulators' CPU time", lambda f: _median(f.idle_sandbox_cpu), "s"),
    ("push channels opened for every calendar", lambda f: f.channels_opened, "s"),
    ("burst emails accepted by SMTP", lambda f: f.burst_emails, ""),
    ("push emails accepted by SMTP", lambda f: f.push_emails, ""),
    # The host's speed while measured (assistant.bench.calibration): the slower reading.
    ("a fixed CPU task, before and after (host's speed)",
     lambda f: max(f.reference_task, default=0.0), "s"),
)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def all_met(runs: list[Figures]) -> bool:
    return all(target.met(figures) for figures in runs for target in TARGETS)


def machine() -> str:
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}")


def show(runs: list[Figures], console: Console) -> None:
    first = runs[0]
    table = Table(title=f"{2 * first.size.calendars:,} calendars ({first.size.calendars:,} Google,"
                        f" {first.size.calendars:,} Outlook), {first.latency * 1000:.0f} ms "
                        "added to every request", title_justify="left")
    table.add_column("figure")
    table.add_column("target")
    for figures in runs:
        table.add_column(figures.store, justify="right")
    for target in TARGETS:
        cells = [_cell(target.measure(f), target.unit, target.met(f)) for f in runs]
        table.add_row(target.name, target.wanted, *cells)
    for name, measure, unit in FACTS:
        table.add_row(name, "", *[_number(measure(f), unit) for f in runs])
    console.print(table)
    console.print(f"on {machine()}")


def _cell(value: float, unit: str, met: bool) -> str:
    mark = "[green]✓[/green]" if met else "[red]✗[/red]"
    return f"{_number(value, unit)} {mark}"


def _number(value: float, unit: str) -> str:
    if math.isinf(value):
        return "none"
    if unit == "s":
        return f"{value:.2f} s" if value < 10 else f"{value:.0f} s"
    if unit == "×":
        return f"{value:,.0f}×"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:,.1f}" if value != int(value) else f"{int(value):,}"


def as_json(runs: list[Figures]) -> dict[str, Any]:
    return {"machine": machine(), "runs": [
        {"store": f.store, "calendars": 2 * f.size.calendars, "latency_seconds": f.latency,
         "targets": {t.name: {"value": t.measure(f), "wanted": t.wanted, "met": t.met(f)}
                     for t in TARGETS},
         "facts": {name: measure(f) for name, measure, _ in FACTS}} for f in runs]}
