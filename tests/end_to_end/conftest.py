"""The whole flow against the sandbox: both calendar emulators, real SMTP, the real service."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from assistant.config import Config
from assistant.ports import MailIn
from assistant.retry import RetryPolicy
from assistant.store import Store
from assistant.wiring import Built, build_service
from integrations.sandbox.environment import SandboxEnvironment
from integrations.sandbox.mail import SandboxInbox

ALICE, BOB = "alice@example.com", "bob@example.com"  # Alice on Google, Bob on Outlook
BERLIN = ZoneInfo("Europe/Berlin")
NO_WAIT = RetryPolicy(sleep=lambda seconds: None)


@pytest.fixture()
def sandbox(tmp_path, monkeypatch) -> Iterator[SandboxEnvironment]:
    environment = SandboxEnvironment(tmp_path / "sandbox", google_users=[ALICE],
                                     microsoft_users=[BOB]).start()
    for name, value in environment.environ.items():
        monkeypatch.setenv(name, value)
    yield environment
    environment.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'assistant.sqlite3'}"
    return request.getfixturevalue("postgres_url")


@contextmanager
def store_session(database_url: str) -> Iterator[Session]:
    """A session on the store at database_url, as a test reads what the workers left."""
    store = Store(database_url)
    try:
        with store.transaction() as session:
            yield session
    finally:
        store.close()


class Running:
    """A service over the sandbox, with its inbox; closes everything at the end."""

    def __init__(self, sandbox: SandboxEnvironment, database_url: str,
                 inbox: MailIn | None = None, **sections) -> None:
        self.sandbox = sandbox
        self.inbox = inbox or SandboxInbox()
        self.config = Config.model_validate(sandbox.config(database_url, **sections))
        self.built: Built = build_service(self.config, retry=NO_WAIT, inbox=self.inbox)
        self.service = self.built.service

    def close(self) -> None:
        self.built.close()


@pytest.fixture()
def running(sandbox, database_url) -> Iterator[Running]:
    service = Running(sandbox, database_url)
    yield service
    service.close()


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """condition()'s first truthy value, polled; fails the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout} s for {what}")
        time.sleep(0.02)


def soon(days: int = 3, hour: int = 10) -> datetime:
    """A meeting time a few days ahead, in Berlin, on the hour."""
    day = (datetime.now(UTC) + timedelta(days=days)).astimezone(BERLIN)
    return day.replace(hour=hour, minute=0, second=0, microsecond=0)


def book_google(sandbox, title, *, start=None, minutes=60, guests=("erin@northwind.example",),
                organiser=ALICE, **fields):
    start = start or soon()
    end = start + timedelta(minutes=minutes)
    return sandbox.google.create_event(
        organiser, summary=title,
        start={"dateTime": start.isoformat(), "timeZone": "Europe/Berlin"},
        end={"dateTime": end.isoformat(), "timeZone": "Europe/Berlin"},
        attendees=[{"email": organiser}, *({"email": guest} for guest in guests)], **fields)


def book_outlook(sandbox, title, *, start=None, minutes=60, guests=("erin@northwind.example",),
                 organiser=BOB, **fields):
    start = (start or soon()).astimezone(UTC)
    end = start + timedelta(minutes=minutes)
    return sandbox.graph.create_event(
        organiser, subject=title,
        start={"dateTime": start.replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
        end={"dateTime": end.replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
        attendees=[{"emailAddress": {"address": guest}, "type": "required"}
                   for guest in guests], **fields)


def reply_to(question: EmailMessage, text: str, sender: str | None = None) -> EmailMessage:
    """The organiser answers a question email from their phone."""
    reply = EmailMessage()
    reply["From"] = sender or question["To"]
    reply["To"] = question["Reply-To"]
    reply["Subject"] = "Re: " + question["Subject"]
    reply["In-Reply-To"] = question["Message-ID"]
    reply["Message-ID"] = f"<reply.{abs(hash((question['Message-ID'], text)))}@example.com>"
    reply.set_content(text + "\n\nSent from my phone\n")
    return reply


@pytest.fixture()
def site(sandbox, database_url) -> Iterator[Any]:
    """A service over the sandbox with its web app served by uvicorn (tests.end_to_end.serving);
    no jobs run: the test drives the service."""
    from tests.end_to_end.serving import served

    with served(sandbox, database_url) as site:
        yield site
