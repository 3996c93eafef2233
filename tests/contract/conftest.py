"""Fixtures for the adapters' contract tests: emulators on localhost, real client libraries."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from assistant.assess import Assessor
from assistant.config import Config
from assistant.errors import TransientProviderError
from assistant.ports import CalendarChanges, SyncFailed
from assistant.retry import RetryPolicy
from assistant.secret_files import write_owner_only
from integrations.google_api import GoogleApi
from integrations.google_auth import SETTINGS_SCOPES, ServiceAccountSignIn, TokenSource
from integrations.google_calendar import GoogleCalendar
from integrations.microsoft_graph import MicrosoftCalendar, microsoft_calendar_from_config
from integrations.sandbox.google_calendar import GoogleCalendarEmulator
from integrations.sandbox.microsoft_graph import GraphEmulator
from integrations.sandbox.microsoft_identity import AppRegistration, LoginRedirect
from integrations.sandbox.server import HANG, Faults
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
    write_owner_only(path, json.dumps(google.service_account_key(SERVICE_ACCOUNT, "example.com")))
    return path


@pytest.fixture()
def google_calendar(google, google_key) -> Iterator[GoogleCalendar]:
    with closing(google_adapter(google, google_key)) as adapter:
        yield adapter


def google_adapter(google, key_path, **options) -> GoogleCalendar:
    """An adapter signed in with key_path; the caller closes it (or uses google_calendar)."""
    sign_in = ServiceAccountSignIn.from_key_file(key_path)
    api = GoogleApi(TokenSource(sign_in), settings_tokens=TokenSource(
        sign_in.with_scopes(SETTINGS_SCOPES)), root_url=google.url, retry=NO_WAIT)
    return GoogleCalendar(api, now=lambda: NOW, **options)


def assert_hung_requests_are_given_up(emulator, adapter, event_id: str) -> None:
    """adapter, built with a request timeout of 0.25 s, gives up on answers that take a second
    (at the default of 30 s they would come), once per try its retry policy allows."""
    adapter.read(ALICE, event_id)  # signed in while the provider still answers
    emulator.faults = Faults(rate=1.0, kinds=(HANG,), hang_seconds=1.0)
    with pytest.raises(TransientProviderError, match="timed out"):
        adapter.read(ALICE, event_id)
    assert emulator.injected[HANG] == NO_WAIT.attempts


def synced(adapter, cursors) -> dict[str, CalendarChanges]:
    """Sync, insisting that no calendar failed; results by calendar."""
    results = {result.calendar: result for result in adapter.sync(cursors)}
    failures = [r for r in results.values() if isinstance(r, SyncFailed)]
    assert not failures, failures
    return results


def ids(changes: CalendarChanges) -> set[str]:
    return {change.event_id for change in changes.changes}


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
    """A webhook endpoint on localhost that records what it is sent, as a push target.

    It answers Graph's validation handshake (echo validationToken as text/plain) and
    accepts everything else with 202, as the service's endpoint will.
    """

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.arrived:
                    receiver.received.append({**self.headers, "path": self.path,
                                              "body": body.decode()})
                    receiver.arrived.notify_all()
                token = parse_qs(urlsplit(self.path).query).get("validationToken")
                answer = token[0].encode() if token else b""
                self.send_response(200 if token else 202)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/push"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, str]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout)
        return list(self.received)

    def wait_for_notifications(self, count: int, timeout: float = 5.0) -> list[dict]:
        """The JSON bodies of what arrived, Graph's validation handshakes left out."""
        def notifications() -> list[dict]:
            return [json.loads(r["body"]) for r in self.received
                    if "validationToken=" not in r["path"]]

        with self.arrived:
            self.arrived.wait_for(lambda: len(notifications()) >= count, timeout)
            return notifications()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    with closing(Receiver()) as receiving:
        yield receiving


@pytest.fixture()
def graph() -> Iterator[GraphEmulator]:
    emulator = GraphEmulator(now=lambda: NOW).start()
    for user in (ALICE, BOB):
        emulator.add_user(user)
    yield emulator
    emulator.stop()


@pytest.fixture()
def graph_app(graph) -> AppRegistration:
    """An app registration with a client secret, consented by an admin."""
    return graph.identity.register_app("example.com", secret="s3cret~value")


def graph_config(graph, app, **microsoft) -> Config:
    settings = {"calendars": [ALICE, BOB], "tenant": "example.com", "client_id": app.client_id,
                "client_secret_env": "TEST_GRAPH_SECRET", "graph_endpoint": graph.graph_url}
    return Config.model_validate({"organisation": {"domains": ["example.com"]},
                                  "microsoft": settings | microsoft})


@pytest.fixture()
def outlook_factory(graph, graph_app, monkeypatch, closing_later):
    """Builds adapters from config the way the service will, msal's calls sent to the emulator."""
    monkeypatch.setenv("TEST_GRAPH_SECRET", graph_app.secret)

    def build(**microsoft) -> MicrosoftCalendar:
        login = closing_later(LoginRedirect(graph.url))
        config = graph_config(graph, graph_app, **microsoft)
        adapter = microsoft_calendar_from_config(config, retry=NO_WAIT, login_http=login)
        adapter.now = lambda: NOW  # the sync window around the tests' fixed now
        return closing_later(adapter)

    return build


@pytest.fixture()
def outlook(outlook_factory) -> MicrosoftCalendar:
    return outlook_factory()
