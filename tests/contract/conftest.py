"""Fixtures for the adapters' contract tests: emulators on localhost, real client libraries."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from assistant.assess import Assessor
from assistant.retry import RetryPolicy
from integrations.google_api import GoogleApi
from integrations.google_auth import ServiceAccountSignIn, TokenSource
from integrations.google_calendar import GoogleCalendar
from integrations.sandbox.google_calendar import GoogleCalendarEmulator
from tests.factories import NOW

ALICE, BOB = "alice@example.com", "bob@example.com"
SERVICE_ACCOUNT = "assistant@meeting-format-sandbox.iam.gserviceaccount.com"
NO_WAIT = RetryPolicy(sleep=lambda seconds: None)


@pytest.fixture()
def google() -> Iterator[GoogleCalendarEmulator]:
    emulator = GoogleCalendarEmulator().start()
    for user in (ALICE, BOB):
        emulator.add_user(user)
    yield emulator
    emulator.stop()


@pytest.fixture()
def google_key(google, tmp_path):
    """A service-account key file delegated for example.com, as an admin would download it."""
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps(google.service_account_key(SERVICE_ACCOUNT, "example.com")))
    return path


@pytest.fixture()
def google_calendar(google, google_key) -> Iterator[GoogleCalendar]:
    with closing(google_adapter(google, google_key)) as adapter:
        yield adapter


def google_adapter(google, key_path, **options) -> GoogleCalendar:
    """An adapter signed in with key_path; the caller closes it (or uses google_calendar)."""
    tokens = TokenSource(ServiceAccountSignIn(key_path))
    api = GoogleApi(tokens, root_url=google.url, retry=NO_WAIT)
    return GoogleCalendar(api, now=lambda: NOW, **options)


@pytest.fixture()
def planner(config, checklist, renderer):
    """The real pure pipeline as the planner: what the service will hand the adapter."""
    assessor = Assessor(config, checklist, renderer)
    return lambda meeting: assessor.assess(meeting, now=NOW).plan


@pytest.fixture()
def closing_later() -> Iterator:
    """closing_later(thing) returns thing and closes it when the test ends."""
    things = []
    yield lambda thing: things.append(thing) or thing
    for thing in things:
        thing.close()


class Receiver:
    """A webhook endpoint on localhost that records what it is sent, as a push target."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.arrived:
                    receiver.received.append(dict(self.headers.items()))
                    receiver.arrived.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/push/google"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, str]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout)
        return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    with closing(Receiver()) as receiving:
        yield receiving
