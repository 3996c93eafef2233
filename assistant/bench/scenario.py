"""One benchmark run on one store: the sandbox at size, the real worker, and what it measured.

Phases, each against the emulators with the latency of a real network added to every HTTP
request:
1. first sync: every calendar listed in full, every Google user's token minted;
2. idle cycles: every calendar polled with its sync cursor, nothing changed (the steady state);
3. naive: the same poll one request at a time, over a sample, for the ratio;
4. burst: customer meetings booked at once in as many calendars, then one poll and delivery
   of their question emails;
5. push: the worker running as `assistant run` does, meetings booked one after another, each
   found through its provider's notification alone.
"""

from __future__ import annotations

import resource
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from functools import partial
from pathlib import Path

from sqlalchemy import func, select, update

from assistant.bench.calibration import reference_task_seconds
from assistant.bench.figures import Figures, Size
from assistant.config import Config
from assistant.environ import environ_set
from assistant.models import Provider
from assistant.scheduler import Worker
from assistant.service import Service
from assistant.store.tables import PushChannel, SeenMeeting, WatchedCalendar
from assistant.wiring import Built, build_service
from integrations.google_api import Call as GoogleCall
from integrations.graph_api import GraphRequest
from integrations.sandbox.process import Call, RemoteSandbox
from integrations.sandbox.server import free_port

Say = Callable[[str], None]
DOMAIN = "example.com"


def run(size: Size, database_url: str, store: str, folder: Path, *, latency: float,
        say: Say) -> Figures:
    figures = Figures(store, size, latency)
    figures.reference_task.append(reference_task_seconds())
    google = [f"g{i:05d}@{DOMAIN}" for i in range(size.calendars)]
    outlook = [f"m{i:05d}@{DOMAIN}" for i in range(size.calendars)]
    say(f"[{store}] starting the sandbox with {2 * size.calendars:,} calendars")
    sandbox = RemoteSandbox(folder / "sandbox", google_users=google, microsoft_users=outlook,
                            latency_seconds=latency).start()
    try:
        with environ_set(sandbox.environ):
            _book_internal(sandbox, google, outlook)
            polling = Config.model_validate(sandbox.config(
                database_url, service={"sync_interval_seconds": 3600}))
            built = build_service(polling)
            try:
                _measure(built, polling, sandbox, google, outlook, figures, say)
            finally:
                built.close()
            listen = f"127.0.0.1:{free_port()}"
            pushed = polling.model_copy(update={"service": polling.service.model_copy(
                update={"listen": listen, "public_url": f"http://{listen}"})})
            _push(pushed, sandbox, google, outlook, figures, say)
    finally:
        sandbox.stop()
    figures.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures.reference_task.append(reference_task_seconds())
    return figures


def _measure(built: Built, config: Config, sandbox: RemoteSandbox, google: list[str],
             outlook: list[str], figures: Figures, say: Say) -> None:
    service = built.service
    service.reconcile_calendars()
    with _timed() as took:
        service.sync(every_calendar=True)
    figures.first_sync = took()
    say(f"[{figures.store}] first sync: {figures.first_sync:.1f} s")
    with _timed() as took:  # a worker's first hour reads them in the background, then monthly
        service.languages_read()
    figures.languages_read = took() + figures.first_sync
    say(f"[{figures.store}] organisers' languages read {figures.languages_read:.1f} s after "
        "the first sync began")
    for _ in range(3):
        sandbox.call("google.reset_counts")
        sandbox.call("graph.reset_counts")
        worker_cpu, sandbox_cpu = time.process_time(), sandbox.cpu_seconds()
        with _timed() as took:
            service.sync(every_calendar=True)
        figures.idle.append(took())
        figures.idle_worker_cpu.append(time.process_time() - worker_cpu)
        figures.idle_sandbox_cpu.append(sandbox.cpu_seconds() - sandbox_cpu)
    figures.idle_round_trips = {"google": sandbox.get("google.round_trips"),
                                "microsoft": sandbox.get("graph.round_trips")}
    figures.idle_calls = {"google": _api_calls(sandbox.get("google.calls")),
                          "microsoft": _api_calls(sandbox.get("graph.calls"))}
    say(f"[{figures.store}] idle cycles: " + ", ".join(f"{s:.2f} s" for s in figures.idle))
    figures.naive_per_calendar = _naive(service, figures.size.naive_sample)
    say(f"[{figures.store}] naive: {figures.naive_per_calendar * 1000:.0f} ms per calendar")
    _burst(built, config, sandbox, google, outlook, figures)
    say(f"[{figures.store}] burst: {figures.burst_emails} emails in {figures.burst_total:.1f} s")


def _api_calls(calls: Counter[str]) -> int:
    """Calls the provider counts against quota: a batch's parts, not the batch envelope."""
    return sum(n for route, n in calls.items() if "batch" not in route)


@contextmanager
def _timed() -> Iterator[Callable[[], float]]:
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end or [time.perf_counter()])[0] - start
    end.append(time.perf_counter())


# -- the naive way ------------------------------------------------------------------------------


def _naive(service: Service, sample: int) -> float:
    """Seconds per calendar polled one request at a time, over one connection."""
    cursors = _cursors(service)
    google_port = service.outside.calendars[Provider.GOOGLE]
    graph_port = service.outside.calendars[Provider.MICROSOFT]
    google_api, graph_api = google_port.api, graph_port.api  # type: ignore[attr-defined]
    google = [(a, c) for (p, a), c in cursors.items() if p == Provider.GOOGLE.value][:sample]
    outlook = [(a, c) for (p, a), c in cursors.items() if p == Provider.MICROSOFT.value][:sample]
    with _timed() as took:
        for address, cursor in google:
            google_api.execute(GoogleCall(address, partial(_list_since, cursor)))
        for address, cursor in outlook:
            graph_api.call(GraphRequest("GET", cursor, address))
    return took() / (len(google) + len(outlook))


def _list_since(cursor: str, api):  # type: ignore[no-untyped-def]
    return api.events.list(calendarId="primary", syncToken=cursor, maxResults=250)


def _cursors(service: Service) -> dict[tuple[str, str], str]:
    with service.store.reading() as session:
        rows = session.execute(select(WatchedCalendar.provider, WatchedCalendar.address,
                                      WatchedCalendar.cursor)).all()
    return {(provider, address): cursor for provider, address, cursor in rows if cursor}


# -- bookings ----------------------------------------------------------------------------------


def _book_internal(sandbox: RemoteSandbox, google: list[str], outlook: list[str]) -> None:
    """A colleague's meeting in every calendar, so the first sync has something to list."""
    sandbox.call_many([_booking(provider, address, f"Pipeline review {i}", f"colleague@{DOMAIN}",
                                days=2)
                       for provider, addresses in ((Provider.GOOGLE, google),
                                                   (Provider.MICROSOFT, outlook))
                       for i, address in enumerate(addresses)])


def _booking(provider: Provider, organiser: str, title: str, guest: str, *, days: int) -> Call:
    """The sandbox call by which organiser books a one-hour meeting with guest."""
    start = (datetime.now(UTC) + timedelta(days=days)).replace(minute=0, second=0,
                                                               microsecond=0)
    end = start + timedelta(hours=1)
    if provider is Provider.GOOGLE:
        return Call("google.create_event", (organiser,), {
            "summary": title, "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
            "end": {"dateTime": end.isoformat(), "timeZone": "UTC"},
            "attendees": [{"email": organiser}, {"email": guest}]})
    return Call("graph.create_event", (organiser,), {
        "subject": title,
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "attendees": [{"emailAddress": {"address": guest}, "type": "required"}]})


def _customer_booking(provider: Provider, organiser: str, n: int) -> Call:
    """A meeting the assistant asks about: a weekly sync with a new customer leaves row 1 open
    (weekly, yet a first meeting), so a few answers could change its format. (A kick-off
    would be decided without a question, and its first email would wait for the invite's
    write.)"""
    return _booking(provider, organiser, f"Weekly sync with Customer {n}",
                    f"buyer@customer{n}.example", days=5)


def _spread(google: list[str], outlook: list[str], count: int, skip: int = 0
            ) -> list[tuple[Provider, str]]:
    """count calendars, half on each provider, skipping the first `skip` of each."""
    half = count // 2
    return ([(Provider.GOOGLE, a) for a in google[skip: skip + count - half]]
            + [(Provider.MICROSOFT, a) for a in outlook[skip: skip + half]])


# -- a burst of new meetings ---------------------------------------------------------------------


def _burst(built: Built, config: Config, sandbox: RemoteSandbox, google: list[str],
           outlook: list[str], figures: Figures) -> None:
    """Meetings booked at once, then the worker started: its first poll finds them all."""
    service = built.service
    organisers = _spread(google, outlook, figures.size.burst)
    sandbox.call_many([_customer_booking(provider, organiser, n)
                       for n, (provider, organiser) in enumerate(organisers)])
    before = sandbox.get("mail.deliveries")
    with service.store.transaction() as session:  # the poll interval has come round
        session.execute(update(WatchedCalendar).values(sync_due=service.clock()))
    start = time.time()
    with _running(Worker(built, config, serve=False)):
        accepted = _wait_for_emails(sandbox, before, len(organisers), timeout=120)
    figures.burst_emails = len(accepted)
    figures.burst_total = max(accepted.values(), default=start) - start
    seen = _first_seen(service, {address for _, address in organisers})
    figures.burst_latencies = [accepted[a] - seen[a] for a in accepted if a in seen]


@contextmanager
def _running(worker: Worker) -> Iterator[Worker]:
    """The worker as `assistant run` runs it, in a thread, for the length of the block."""
    thread = threading.Thread(target=worker.run, kwargs={"announce": lambda _: None},
                              name="bench-worker", daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=60)


def _wait_for_emails(sandbox: RemoteSandbox, skip: int, count: int, *, timeout: float
                     ) -> dict[str, float]:
    """When each of count recipients' first email was accepted, once all were (or at timeout).

    Waits on the sink's counter: reading its whole list 20 times a second would cost the
    worker's process more than the emails it measures.
    """
    deadline = time.monotonic() + timeout
    while True:
        late = time.monotonic() >= deadline
        if late or sandbox.get("mail.deliveries") - skip >= count:
            accepted = _accepted(sandbox, skip)
            if late or len(accepted) >= count:
                return accepted
        time.sleep(0.05)


def _accepted(sandbox: RemoteSandbox, skip: int) -> dict[str, float]:
    """When the SMTP server accepted each recipient's first new email (after `skip` emails)."""
    first: dict[str, float] = {}
    for at, to, _ in sandbox.get("mail.accepted")[skip:]:
        first.setdefault(parseaddr(to)[1].lower(), at)
    return first


def _first_seen(service: Service, organisers: set[str]) -> dict[str, float]:
    """When the worker first saw each organiser's newest meeting."""
    with service.store.reading() as session:
        rows = session.execute(select(SeenMeeting.organiser, func.max(SeenMeeting.first_seen_at))
                               .group_by(SeenMeeting.organiser)).all()
    return {organiser: _aware(at).timestamp() for organiser, at in rows if organiser in organisers}


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- push ------------------------------------------------------------------------------------


def _push(config: Config, sandbox: RemoteSandbox, google: list[str], outlook: list[str],
          figures: Figures, say: Say) -> None:
    """A worker started with push on; meetings booked one by one, found by notification."""
    built = build_service(config)
    try:
        with _timed() as took, _running(Worker(built, config)):
            _wait_for_channels(built.service, 2 * figures.size.calendars)
            figures.channels_opened = took()
            say(f"[{figures.store}] {2 * figures.size.calendars:,} push channels opened in "
                f"{figures.channels_opened:.1f} s")
            organisers = _spread(google, outlook, figures.size.pushed, skip=figures.size.burst)
            before = sandbox.get("mail.deliveries")
            booked: dict[str, float] = {}
            for n, (provider, organiser) in enumerate(organisers, start=figures.size.burst):
                booked[organiser] = time.time()
                sandbox.run(_customer_booking(provider, organiser, n))
                time.sleep(0.1)  # ten bookings a second, each its own notification
            accepted = _wait_for_emails(sandbox, before, len(booked), timeout=30)
        figures.push_emails = len(accepted)
        figures.push_latencies = [accepted[a] - booked[a] for a in accepted if a in booked]
    finally:
        built.close()


def _wait_for_channels(service: Service, count: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with service.store.reading() as session:
            if session.scalar(select(func.count()).select_from(PushChannel)) >= count:
                return
        time.sleep(0.2)
    raise TimeoutError(f"the worker did not open {count} push channels in {timeout:.0f} s")
