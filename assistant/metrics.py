"""What a worker has done, for `/metrics` in Prometheus' text format (prometheus_client).

Counters count this process's work since it started (Prometheus adds up the workers); the
state of the whole deployment (conversations by state, outbox backlog, each calendar's sync
lag) is read from the store when scraped, so every worker reports the same picture of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from assistant.store import Store
from assistant.store.tables import Conversation, Outbox, WatchedCalendar

_EVENTS = {
    "meetings_detected": "Customer meetings recognised",
    "emails_sent": "Emails handed to the mail server, by kind",
    "replies_read": "Replies read from the inbox",
    "annotations_written": "Invites annotated (written or found already as planned)",
}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._counters = {
            name: Counter(f"assistant_{name}", text, ["kind"] if name == "emails_sent" else [],
                          registry=self.registry)
            for name, text in _EVENTS.items()}
        self._errors = Counter("assistant_errors", "Failures, by where they happened", ["kind"],
                               registry=self.registry)
        self._watching = False

    def count(self, name: str, kind: str = "") -> None:
        counter = self._counters[name]
        (counter.labels(kind) if kind else counter).inc()

    def error(self, kind: str) -> None:
        self._errors.labels(kind).inc()

    def watch_store(self, store: Store, clock: Callable[[], datetime]) -> None:
        """Report the store's picture too (once, however often a worker is started)."""
        if not self._watching:
            self.registry.register(_StoreCollector(store, clock))
            self._watching = True

    def text(self) -> bytes:
        return generate_latest(self.registry)


class _StoreCollector(Collector):
    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self.store, self.clock = store, clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.clock().astimezone(UTC)
        with self.store.reading() as session:  # a scrape never holds up the workers
            states = session.execute(select(Conversation.state, func.count())
                                     .group_by(Conversation.state)).all()
            outbox = session.execute(select(Outbox.kind, Outbox.state, func.count())
                                     .group_by(Outbox.kind, Outbox.state)).all()
            # Paused and removed calendars are not synced on purpose: no lag to alert on.
            calendars = session.execute(select(WatchedCalendar.provider, WatchedCalendar.id,
                                               WatchedCalendar.last_synced_at)
                                        .where(WatchedCalendar.watched())).all()
        conversations = GaugeMetricFamily("assistant_conversations", "Meetings by state",
                                          labels=["state"])
        for state, count in states:
            conversations.add_metric([state], count)
        effects = GaugeMetricFamily("assistant_outbox", "Outbox rows by kind and state",
                                    labels=["kind", "state"])
        for kind, state, count in outbox:
            effects.add_metric([kind, state], count)
        # By the calendar's id (`assistant calendars list --json` says whose it is): /metrics
        # is scraped by machines and may be read by more people than the admin page.
        lag = GaugeMetricFamily("assistant_sync_lag_seconds",
                                "Seconds since each calendar last synced",
                                labels=["provider", "calendar_id"])
        for provider, calendar_id, synced in calendars:
            if synced is not None:
                lag.add_metric([provider, str(calendar_id)], (now - synced).total_seconds())
        yield from (conversations, effects, lag)
