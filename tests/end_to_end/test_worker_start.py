"""A worker's start while its database server restarts: it waits, never exits (a chaos run met
each of these steps failing in turn)."""

from __future__ import annotations

import threading

from sqlalchemy.exc import OperationalError

from assistant.scheduler import Worker
from tests.end_to_end.conftest import Running, wait_until


def test_a_worker_whose_database_goes_away_while_it_counts_its_calendars_waits(
        sandbox, tmp_path, monkeypatch):
    running = Running(sandbox, f"sqlite:///{tmp_path / 'assistant.db'}")
    count_calendars = running.service.watched
    failures = [OperationalError("SELECT count(*)", {}, Exception(
        'connection to server at "127.0.0.1" failed: server closed the connection unexpectedly'))]

    def watched() -> dict[str, int]:
        if failures:
            raise failures.pop()
        return count_calendars()

    monkeypatch.setattr(running.service, "watched", watched)
    worker = Worker(running.built, running.config, serve=False)
    announced: list[str] = []
    thread = threading.Thread(target=worker.run, kwargs={"announce": announced.append})
    thread.start()
    try:
        wait_until(lambda: announced or not thread.is_alive(), "the worker's start", timeout=30)
        assert announced and "watching 1 Google, 1 Microsoft 365 calendars" in announced[0]
    finally:
        worker.stop()
        thread.join(timeout=20)
        running.close()
    assert not thread.is_alive() and not failures
