"""The worker's web app, served for real: uvicorn on 127.0.0.1, requests as the client.

Everything behind it is real too: the Service over both calendar emulators, real SMTP into the
mail sink, SQLite and PostgreSQL. The emulators deliver their push notifications as real POSTs
to the app (Google's X-Goog-* headers; Graph's JSON with clientState, after the validation
handshake), so what is tested is the whole path from "a person booked a meeting" to "the
organiser has the question email", and the refusals of whatever does not carry our secrets.

Two ways of serving:
- `site`: the app alone (create_app) in a uvicorn thread, while the test drives the service's
  jobs itself, so each step can be checked on its own;
- `live`: a whole assistant.scheduler.Worker (APScheduler jobs + uvicorn) on a thread, with the
  sync interval at an hour, so only a push notification can explain a sync within seconds.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_SUBMITTED,
)
from sqlalchemy import select

from assistant import block
from assistant.calendar_admin import CalendarAdmin
from assistant.models import Provider
from assistant.scheduler import Worker
from assistant.service import Service
from assistant.store.tables import Conversation, Outbox, UsedLink, WatchedCalendar
from integrations.sandbox.server import free_port
from tests.end_to_end.conftest import (
    ALICE,
    BOB,
    Running,
    book_google,
    book_outlook,
    wait_until,
)
from tests.end_to_end.serving import HOUR, HTTP_TIMEOUT, Site, answer_links, tampered, web_sections

# -- small helpers ---------------------------------------------------------------------------------

def watched(service: Service, provider: Provider, address: str) -> WatchedCalendar:
    with service.store.transaction() as session:
        row = session.scalars(select(WatchedCalendar).where(
            WatchedCalendar.provider == provider.value,
            WatchedCalendar.address == address)).one()
        session.expunge(row)
        return row


def is_due(service: Service, provider: Provider, address: str) -> bool:
    return watched(service, provider, address).sync_due <= datetime.now(UTC)


def conversation_states(service: Service) -> list[str]:
    with service.store.transaction() as session:
        return [str(state) for state in session.scalars(select(Conversation.state))]


def count_rows(service: Service, model: type, *where: Any) -> int:
    with service.store.transaction() as session:
        return len(session.scalars(select(model).where(*where)).all())


@contextmanager
def notifications_lost(emulator: Any) -> Iterator[None]:
    """Changes made meanwhile reach the calendar but no push is sent for them."""
    send, emulator.store.on_change = emulator.store.on_change, lambda *args: None
    try:
        yield
    finally:
        emulator.store.on_change = send


def delivered_to(emulator: Any, path: str) -> list[Any]:
    return [d for d in emulator.notifier.delivered if d.url.endswith(path)]


# -- serving -------------------------------------------------------------------------------------

def open_channels(site: Site, sandbox: Any) -> None:
    """Open the channels (push.keep_open), then let their first messages come and go.

    Google sends a "sync" message as a channel opens, and the app takes it like any other
    notification; whatever it made due is synced here, so each test starts with nothing due.
    """
    site.service.push.keep_open()
    for emulator in (sandbox.google, sandbox.graph):
        emulator.notifier.wait_idle()
    site.service.sync()
    site.wakes = 0
    for provider, address in ((Provider.GOOGLE, ALICE), (Provider.MICROSOFT, BOB)):
        assert not is_due(site.service, provider, address)


JOBS = ("sync", "outbox", "inbox", "follow_up", "channels")


class JobWatch:
    """What the worker's scheduler is doing, from its events: runs, running, skipped runs."""

    def __init__(self, scheduler_: Any) -> None:
        self.runs: Counter[str] = Counter()
        self.running: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()  # "maximum number of running instances reached"
        self._lock = threading.Lock()
        scheduler_.add_listener(self._event, EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED
                                | EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES)

    def _event(self, event: Any) -> None:
        with self._lock:
            if event.code == EVENT_JOB_SUBMITTED:
                self.running[event.job_id] += 1
            elif event.code == EVENT_JOB_MAX_INSTANCES:
                self.skipped[event.job_id] += 1
            else:
                self.running[event.job_id] -= 1
                self.runs[event.job_id] += 1

    def idle(self) -> bool:
        with self._lock:
            return all(self.runs[job] for job in JOBS) and \
                all(count <= 0 for count in self.running.values())


class Live:
    """A whole worker (APScheduler jobs and its uvicorn web app) running on a thread."""

    def __init__(self, running: Running, port: int) -> None:
        self.service = running.service
        self.url = f"http://127.0.0.1:{port}"
        self.worker = Worker(running.built, running.config, serve=True)
        self.jobs = JobWatch(self.worker.scheduler)
        self._thread = threading.Thread(target=self.worker.run, name="worker", daemon=True)

    def start(self) -> Live:
        self._thread.start()
        server = self.worker.server
        assert server is not None
        wait_until(lambda: server.started or not self._thread.is_alive(), "the web app")
        assert self._thread.is_alive() and server.started, "the worker did not start"
        return self

    def settle(self, sandbox: Any) -> None:
        """Wait for the start-up work (first syncs, channels, their first messages) to end."""
        wait_until(self.jobs.idle, f"every job to run once: {self.jobs.runs}")
        for emulator in (sandbox.google, sandbox.graph):
            emulator.notifier.wait_idle()

        def settled() -> bool:
            return self.jobs.idle() and not any(
                is_due(self.service, provider, address)
                for provider, address in ((Provider.GOOGLE, ALICE), (Provider.MICROSOFT, BOB)))

        wait_until(settled, "the worker to be idle with nothing due")

    def stop(self) -> None:
        self.worker.stop()
        self._thread.join(timeout=20)
        assert not self._thread.is_alive(), "the worker did not stop within 20 s"


@pytest.fixture()
def live(sandbox, database_url, monkeypatch) -> Iterator[Live]:
    """A worker whose jobs other than sync stay quiet once they ran at start: within a test,
    only a push notification's wake_sync makes anything happen."""
    port = free_port()
    sections = web_sections(port)
    sections["service"] |= {"outbox_interval_seconds": 600, "inbox_interval_seconds": HOUR,
                            "follow_up_interval_seconds": HOUR}
    running = Running(sandbox, database_url, **sections)
    worker = Live(running, port).start()
    try:
        yield worker
    finally:
        worker.stop()
        running.close()


@contextmanager
def mail_server_held(sink: Any) -> Iterator[tuple[threading.Event, threading.Event]]:
    """The mail server takes its time: DATA waits (`arrived` is set) until `release` is set."""
    arrived, release = threading.Event(), threading.Event()
    accept = sink.accept

    async def held(envelope: Any, connection: Any = None) -> str:
        arrived.set()
        while not release.is_set():
            await asyncio.sleep(0.01)
        return await accept(envelope, connection)

    sink.accept = held
    try:
        yield arrived, release
    finally:
        release.set()
        del sink.accept


# -- health and metrics ----------------------------------------------------------------------------

def test_healthz_answers_ok_and_metrics_show_the_work_done(site, sandbox):
    health = requests.get(site.url + "/healthz", timeout=HTTP_TIMEOUT)
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "worker": site.service.worker}

    site.service.metrics.watch_store(site.service.store, site.service.clock)
    book_google(sandbox, "Pitch to Northwind")
    site.service.cycle()
    assert len(sandbox.mail.wait_for(1)) == 1

    metrics = requests.get(site.url + "/metrics", timeout=HTTP_TIMEOUT)
    assert metrics.status_code == 200
    assert metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = metrics.text
    assert re.search(r'^assistant_emails_sent_total\{kind="question"\} 1\.0$', text, re.M), text
    assert "# TYPE assistant_sync_lag_seconds gauge" in text
    ids = {provider: watched(site.service, provider, address).id
           for provider, address in ((Provider.GOOGLE, ALICE), (Provider.MICROSOFT, BOB))}
    for provider, calendar_id in ids.items():
        lag = re.search(rf'^assistant_sync_lag_seconds\{{calendar_id="{calendar_id}",'
                        rf'provider="{provider.value}"\}} (\S+)$', text, re.M)
        assert lag is not None, f"no sync lag for {provider.value} {calendar_id}:\n{text}"
        assert 0 <= float(lag.group(1)) < 60
    assert re.search(r'^assistant_conversations\{state="asked"\} 1\.0$', text, re.M), text
    assert "@" not in text  # no mailbox named: /metrics shares the webhooks' listener

    CalendarAdmin(site.service.store, site.service.config, clock=site.service.clock).pause(
        None, [BOB])  # not synced on purpose: no lag to alert on
    text = requests.get(site.url + "/metrics", timeout=HTTP_TIMEOUT).text
    assert f'calendar_id="{ids[Provider.GOOGLE]}"' in text
    assert f'calendar_id="{ids[Provider.MICROSOFT]}"' not in text


def test_an_unknown_provider_and_an_oversized_notification_are_refused(site):
    assert requests.post(site.url + "/push/yahoo", timeout=HTTP_TIMEOUT).status_code == 404
    huge = requests.post(site.url + "/push/microsoft", data=b"x" * 1_000_001,
                         timeout=HTTP_TIMEOUT)
    assert huge.status_code == 413
    assert requests.get(site.url + "/push/google", timeout=HTTP_TIMEOUT).status_code == 405


# -- a running worker ----------------------------------------------------------------------------

def test_a_running_worker_opens_a_channel_per_calendar_at_start(live, sandbox):
    assert requests.get(live.url + "/healthz", timeout=HTTP_TIMEOUT).json()["status"] == "ok"
    live.settle(sandbox)
    google = live.service.push.live(Provider.GOOGLE)
    [(channel_id, channel)] = google.items()
    assert channel.calendar == ALICE and channel.address == live.url + "/push/google"
    assert sandbox.google.channels[channel_id]["address"] == live.url + "/push/google"
    # Graph validates the notification URL while the subscription is made: the web app must
    # be answering by the time the channels job runs.
    graph = live.service.push.live(Provider.MICROSOFT)
    assert [c.calendar for c in graph.values()] == [BOB], (
        "no Graph subscription after start: the validation handshake failed")
    assert [s["notificationUrl"] for s in sandbox.graph.subscriptions.values()] == [
        live.url + "/push/microsoft"]


def test_a_google_booking_is_pushed_and_asked_within_seconds_by_a_running_worker(live, sandbox):
    live.settle(sandbox)
    synced_before = watched(live.service, Provider.GOOGLE, ALICE).last_synced_at
    syncs_before = live.jobs.runs["sync"]
    assert synced_before is not None and sandbox.mail.messages == []

    book_google(sandbox, "Pitch to Northwind")
    mails = sandbox.mail.wait_for(1, timeout=5)
    assert len(mails) == 1, "no question within 5 s of the booking"
    [question] = mails
    assert question["To"] == ALICE and "in person or virtual?" in question["Subject"]

    pushes = [d for d in delivered_to(sandbox.google, "/push/google")
              if d.headers["X-Goog-Resource-State"] == "exists"]
    assert [d.status for d in pushes] == [200]
    assert watched(live.service, Provider.GOOGLE, ALICE).last_synced_at > synced_before
    wait_until(lambda: live.jobs.runs["sync"] > syncs_before, "the sync job to end")
    assert not is_due(live.service, Provider.GOOGLE, ALICE)  # and the next is an hour away


def test_a_notification_arriving_while_the_sync_job_finishes_is_not_lost(live, sandbox):
    """A push that lands while the sync job is still busy (here: handing an email to a slow
    mail server) must still be synced soon, not at the next interval an hour later."""
    live.settle(sandbox)
    with mail_server_held(sandbox.mail) as (arrived, release):
        book_outlook(sandbox, "Northwind onboarding")  # Graph pushes; the sync job runs
        assert arrived.wait(10), "Bob's question never reached the mail server"
        book_google(sandbox, "Pitch to Northwind")  # pushed while that job is still running
        sandbox.google.notifier.wait_idle()
        assert [d.status for d in delivered_to(sandbox.google, "/push/google")
                if d.headers["X-Goog-Resource-State"] == "exists"] == [200]
        release.set()
    mails = sandbox.mail.wait_for(2, timeout=5)
    assert sorted(m["To"] for m in mails) == [ALICE, BOB], (
        f"Alice's meeting was not synced: due={is_due(live.service, Provider.GOOGLE, ALICE)}, "
        f"sync runs skipped while busy: {live.jobs.skipped['sync']}")


# -- Google push, step by step --------------------------------------------------------------------

def test_a_google_notification_makes_its_calendar_due_through_the_web_app(site, sandbox):
    service = site.service
    service.cycle()  # the first sync: nothing is due for an hour now
    assert not is_due(service, Provider.GOOGLE, ALICE)
    open_channels(site, sandbox)
    [(channel_id, channel)] = service.push.live(Provider.GOOGLE).items()
    assert sandbox.google.channels[channel_id]["address"] == site.url + "/push/google"

    book_google(sandbox, "Pitch to Northwind")
    sandbox.google.notifier.wait_idle()
    [push] = [d for d in delivered_to(sandbox.google, "/push/google")
              if d.headers["X-Goog-Resource-State"] == "exists"]
    assert push.status == 200 and push.headers["X-Goog-Channel-ID"] == channel_id
    assert is_due(service, Provider.GOOGLE, ALICE)
    assert not is_due(service, Provider.MICROSOFT, BOB)
    assert site.wakes == 1, "the app did not ask the worker to sync now"

    assert service.sync() == 1
    service.deliver()
    [question] = sandbox.mail.wait_for(1)
    assert question["To"] == ALICE and "in person or virtual?" in question["Subject"]


def _google_headers(channel: Any) -> dict[str, str]:
    """What Google sends for a change on one of our channels."""
    return {"X-Goog-Channel-ID": channel.channel_id, "X-Goog-Channel-Token": channel.token,
            "X-Goog-Resource-ID": channel.resource_id, "X-Goog-Resource-State": "exists",
            "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/calendars/x/events",
            "X-Goog-Message-Number": "7"}


@pytest.mark.parametrize("forgery", ["unknown channel id", "wrong channel token",
                                     "no channel token", "wrong resource id"])
def test_a_forged_google_notification_is_refused_and_syncs_nothing(site, sandbox, forgery):
    service = site.service
    service.cycle()
    open_channels(site, sandbox)
    [channel] = service.push.live(Provider.GOOGLE).values()
    with notifications_lost(sandbox.google):
        book_google(sandbox, "Pitch to Northwind")  # waiting in the calendar, unannounced

    headers = _google_headers(channel)
    if forgery == "unknown channel id":
        headers["X-Goog-Channel-ID"] = "f" * 32
    elif forgery == "wrong channel token":
        headers["X-Goog-Channel-Token"] = channel.token[:-1] + ("x" if channel.token[-1] != "x"
                                                                else "y")
    elif forgery == "no channel token":
        del headers["X-Goog-Channel-Token"]
    else:
        headers["X-Goog-Resource-ID"] = "not-" + channel.resource_id
    refused = requests.post(site.url + "/push/google", headers=headers, timeout=HTTP_TIMEOUT)
    assert refused.status_code == 403
    assert not is_due(service, Provider.GOOGLE, ALICE)
    assert site.wakes == 0
    assert service.sync() == 0
    service.deliver()
    assert sandbox.mail.messages == []

    # The control: the genuine headers are accepted, and the waiting meeting is then found.
    genuine = requests.post(site.url + "/push/google", headers=_google_headers(channel),
                            timeout=HTTP_TIMEOUT)
    assert genuine.status_code == 200
    assert is_due(service, Provider.GOOGLE, ALICE)
    assert service.sync() == 1


def test_a_genuine_notification_replayed_many_times_only_makes_one_sync_due(site, sandbox):
    service = site.service
    service.cycle()
    open_channels(site, sandbox)
    [channel] = service.push.live(Provider.GOOGLE).values()
    with notifications_lost(sandbox.google):
        book_google(sandbox, "Pitch to Northwind")
    for _ in range(20):  # someone who saw one notification sends it again and again
        replayed = requests.post(site.url + "/push/google", headers=_google_headers(channel),
                                 timeout=HTTP_TIMEOUT)
        assert replayed.status_code == 200
    assert service.sync() == 1  # one sync of the calendar, whatever the count
    assert service.sync() == 0
    service.deliver()
    assert len(sandbox.mail.messages) == 1  # and the meeting is asked about once


# -- Microsoft Graph -------------------------------------------------------------------------------

def test_graph_validates_the_subscription_and_only_its_client_state_makes_a_sync(site, sandbox):
    service = site.service
    service.cycle()
    assert not is_due(service, Provider.MICROSOFT, BOB)

    # The handshake, as Graph makes it, answered by the app: the token echoed as plain text.
    echoed = requests.post(site.url + "/push/microsoft", params={"validationToken": "a b+c/="},
                           headers={"Content-Type": "text/plain"}, timeout=HTTP_TIMEOUT)
    assert echoed.status_code == 200 and echoed.text == "a b+c/="
    assert echoed.headers["Content-Type"].startswith("text/plain")

    open_channels(site, sandbox)  # the emulator refuses a subscription without the handshake
    [subscription] = sandbox.graph.subscriptions.values()
    assert subscription["notificationUrl"] == site.url + "/push/microsoft"
    [(subscription_id, channel)] = service.push.live(Provider.MICROSOFT).items()
    assert subscription_id == subscription["id"] and channel.calendar == BOB
    assert subscription["clientState"] == channel.token

    with notifications_lost(sandbox.graph):
        event = book_outlook(sandbox, "Northwind onboarding")
    forged = {"value": [{
        "subscriptionId": subscription_id, "clientState": "guessed", "changeType": "created",
        "resource": f"Users/{BOB}/Events/{event['id']}", "tenantId": "x"}]}
    refused = requests.post(site.url + "/push/microsoft", json=forged, timeout=HTTP_TIMEOUT)
    assert refused.status_code == 403
    assert not is_due(service, Provider.MICROSOFT, BOB)
    assert site.wakes == 0
    assert service.sync() == 0
    service.deliver()
    assert sandbox.mail.messages == []

    # The organiser moves the meeting; Graph sends a real change notification with our secret.
    sandbox.graph.move_event(BOB, event["id"], timedelta(hours=1))
    sandbox.graph.notifier.wait_idle()
    [notification] = delivered_to(sandbox.graph, "/push/microsoft")
    assert notification.status == 202
    assert is_due(service, Provider.MICROSOFT, BOB)
    assert not is_due(service, Provider.GOOGLE, ALICE)
    assert site.wakes == 1
    assert service.sync() == 1
    service.deliver()
    [question] = sandbox.mail.wait_for(1)
    assert question["To"] == BOB


def test_a_graph_notification_for_an_unknown_subscription_is_refused(site, sandbox):
    service = site.service
    service.cycle()
    open_channels(site, sandbox)
    [channel] = service.push.live(Provider.MICROSOFT).values()
    unknown = {"value": [{"subscriptionId": "00000000-0000-0000-0000-000000000000",
                          "clientState": channel.token, "changeType": "updated"}]}
    for body in (unknown, b"{not json"):
        kwargs = {"json": body} if isinstance(body, dict) else {"data": body}
        answer = requests.post(site.url + "/push/microsoft", timeout=HTTP_TIMEOUT, **kwargs)
        assert answer.status_code == 403, body
    assert not is_due(service, Provider.MICROSOFT, BOB)


# -- one-click answers ---------------------------------------------------------------------------

def test_a_one_click_link_shows_on_get_applies_on_post_and_works_once(site, sandbox):
    service = site.service
    event = book_google(sandbox, "Pitch to Northwind")
    service.cycle()
    [question] = sandbox.mail.wait_for(1)
    links = answer_links(question)
    assert {"in person", "virtual"} <= set(links), links
    assert all(link.startswith(site.url + "/answer/") for link in links.values())
    assert "/answer/" not in question.get_body(preferencelist=("plain",)).get_content()
    virtual = links["virtual"]

    # A mail scanner (or the organiser) opening the link: a page to confirm, nothing changed.
    for _ in range(2):
        shown = requests.get(virtual, timeout=HTTP_TIMEOUT)
        assert shown.status_code == 200
        assert "Confirm your answer" in shown.text and 'method="post"' in shown.text
        assert "Pitch to Northwind" in shown.text and "virtual" in shown.text
    service.deliver()
    assert conversation_states(service) == ["asked"]
    assert count_rows(service, UsedLink) == 0
    assert count_rows(service, Outbox, Outbox.kind == "annotate") == 0
    assert block.find_block(sandbox.google.event(ALICE, event["id"]).get("description") or "",
                            False) is None

    # Confirming applies it; the invite is annotated at the next delivery.
    applied = requests.post(virtual, timeout=HTTP_TIMEOUT)
    assert applied.status_code == 200
    assert "Thank you" in applied.text and "virtual" in applied.text
    assert conversation_states(service) == ["answered"]
    service.deliver()
    after = sandbox.google.event(ALICE, event["id"])
    assert block.find_block(after["description"], False) is not None
    assert "cameras on" in after["description"]
    assert conversation_states(service) == ["annotated"]
    etag = after["etag"]

    # The same link again changes nothing and says so; so does another link of that email.
    again = requests.post(virtual, timeout=HTTP_TIMEOUT)
    assert again.status_code == 200 and "used already" in again.text
    other = requests.post(links["in person"], timeout=HTTP_TIMEOUT)
    assert other.status_code == 200 and "decided already" in other.text
    service.deliver()
    assert sandbox.google.event(ALICE, event["id"])["etag"] == etag
    assert conversation_states(service) == ["annotated"]


def test_a_tampered_one_click_link_gets_400_and_changes_nothing(site, sandbox):
    service = site.service
    book_google(sandbox, "Pitch to Northwind")
    service.cycle()
    [question] = sandbox.mail.wait_for(1)
    forged = tampered(answer_links(question)["in person"])
    for method in ("GET", "POST"):
        answer = requests.request(method, forged, timeout=HTTP_TIMEOUT)
        assert answer.status_code == 400, method
        assert "This link does not work" in answer.text
    garbage = requests.post(site.url + "/answer/%25%25not-base64", timeout=HTTP_TIMEOUT)
    assert garbage.status_code == 400
    service.deliver()
    assert conversation_states(service) == ["asked"]
    assert count_rows(service, UsedLink) == 0


# -- Graph lifecycle notifications ----------------------------------------------------------------

def test_a_subscription_graph_wants_reauthorised_is_renewed_at_once(site, sandbox):
    site.service.cycle()
    open_channels(site, sandbox)
    [(subscription_id, before)] = site.service.push.live(Provider.MICROSOFT).items()
    renewals = "PATCH /v1.0/subscriptions/{sub}"
    sandbox.graph.send_lifecycle(subscription_id, "reauthorizationRequired")
    wait_until(lambda: sandbox.graph.calls[renewals] >= 1, "the subscription to be renewed")
    wait_until(lambda: site.service.push.live(Provider.MICROSOFT)[subscription_id].expires
               >= before.expires, "the renewal to be stored")


def test_a_subscription_graph_removed_is_opened_anew(site, sandbox):
    site.service.cycle()
    open_channels(site, sandbox)
    [subscription_id] = site.service.push.live(Provider.MICROSOFT)
    sandbox.graph.send_lifecycle(subscription_id, "subscriptionRemoved")
    wait_until(lambda: set(site.service.push.live(Provider.MICROSOFT)) - {subscription_id},
               "a new subscription")
    [fresh] = site.service.push.live(Provider.MICROSOFT)
    assert fresh in sandbox.graph.subscriptions
