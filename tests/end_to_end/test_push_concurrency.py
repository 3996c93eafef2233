"""Push channels for many calendars at once: opened concurrently, each one stored, none orphaned.

Both emulators answer every request 50 ms late, as real providers roughly do; Graph checks each
new subscription's address against the real web app before it answers, as Graph does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import uvicorn
from sqlalchemy import select

from assistant.store.tables import PushChannel, WatchedCalendar
from assistant.web import create_app
from integrations.sandbox.environment import SandboxEnvironment
from integrations.sandbox.server import Faults, free_port
from tests.end_to_end.conftest import Running, store_session

LATENCY = 0.05  # seconds, every request to either emulator
GOOGLE_USERS = [f"g{i:02}@example.com" for i in range(20)]
OUTLOOK_USERS = [f"m{i:02}@example.com" for i in range(20)]
GHOST = "ghost@example.com"  # in the config, unknown to Google: its channel cannot be opened


@pytest.fixture()
def slow_sandbox(tmp_path, monkeypatch) -> Iterator[SandboxEnvironment]:
    environment = SandboxEnvironment(tmp_path / "sandbox", google_users=GOOGLE_USERS,
                                     microsoft_users=OUTLOOK_USERS,
                                     faults=Faults(latency_seconds=LATENCY)).start()
    for name, value in environment.environ.items():
        monkeypatch.setenv(name, value)
    yield environment
    environment.stop()


@contextmanager
def serving(sandbox: SandboxEnvironment, database_url: str, *,
            max_connections: int) -> Iterator[Running]:
    """A service whose web app answers Graph's validation at public_url, calendars reconciled."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    running = Running(sandbox, database_url, service={"public_url": url},
                      google={"calendars": [*GOOGLE_USERS, GHOST],
                              "max_connections": max_connections},
                      microsoft={"max_connections": max_connections})
    app = create_app(running.service, running.built.push_readers)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", log_config=None))
    thread = threading.Thread(target=server.run, name="web", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started, "uvicorn did not start"
        running.service.reconcile_calendars()
        yield running
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        running.close()


def stored_channels(database_url: str) -> dict[str, list[str]]:
    """The channel ids stored, by calendar address."""
    with store_session(database_url) as session:
        rows = session.execute(select(WatchedCalendar.address, PushChannel.channel_id)
                               .join(PushChannel.calendar)).all()
    by_calendar: dict[str, list[str]] = {}
    for address, channel_id in rows:
        by_calendar.setdefault(address, []).append(channel_id)
    return by_calendar


def opened(sandbox: SandboxEnvironment) -> set[str]:
    """The channels and subscriptions open at the emulators."""
    return set(sandbox.google.channels) | set(sandbox.graph.subscriptions)


def test_forty_calendars_get_their_channels_concurrently_and_one_failing_stops_none(
        slow_sandbox, database_url):
    with serving(slow_sandbox, database_url, max_connections=16) as running:
        started = time.monotonic()
        running.service.push.keep_open()
        took = time.monotonic() - started

        # One at a time, 41 calls and 21 Google sign-ins at 50 ms each take over 2.5 s.
        assert took < 1.3, f"keep_open took {took:.2f} s"
        stored = stored_channels(database_url)
        assert sorted(stored) == sorted(GOOGLE_USERS + OUTLOOK_USERS)  # the ghost has none
        assert all(len(ids) == 1 for ids in stored.values())
        assert {i for ids in stored.values() for i in ids} == opened(slow_sandbox)
        registry = running.service.metrics.registry
        assert registry.get_sample_value("assistant_errors_total", {"kind": "push"}) == 1

        # A week on, every channel is renewed (Google: a new channel for the old one; Graph:
        # the same subscription, extended), each calendar still with exactly one.
        week_on = datetime.now(UTC) + timedelta(days=6, hours=12)
        running.service.clock = lambda: week_on
        started = time.monotonic()
        running.service.push.keep_open()
        took = time.monotonic() - started
        assert took < 1.3, f"renewing took {took:.2f} s"  # one at a time: over 2 s
        renewed = stored_channels(database_url)
        assert sorted(renewed) == sorted(stored)
        assert all(len(ids) == 1 for ids in renewed.values())
        assert {i for ids in renewed.values() for i in ids} == opened(slow_sandbox)
        assert all(renewed[user] != stored[user] for user in GOOGLE_USERS)
        assert all(renewed[user] == stored[user] for user in OUTLOOK_USERS)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # not about the store
def test_a_worker_stopping_midway_starts_no_new_calls_and_keeps_every_channel_it_opened(
        slow_sandbox, database_url):
    with serving(slow_sandbox, database_url, max_connections=2) as running:
        keeping = threading.Thread(target=running.service.push.keep_open)
        keeping.start()
        time.sleep(0.4)  # two at a time, 100-150 ms each: some done, most still to do
        running.service.stop_soon()
        keeping.join(timeout=10)
        assert not keeping.is_alive()

        stored = stored_channels(database_url)
        assert 0 < len(stored) < len(GOOGLE_USERS + OUTLOOK_USERS)
        # Whatever the provider opened is stored: nothing is left open and unknown.
        assert {i for ids in stored.values() for i in ids} == opened(slow_sandbox)
