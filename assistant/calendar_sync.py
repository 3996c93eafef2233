"""The shape every provider's sync and write share, so adapters only say how to talk HTTP.

Sync: many calendars advance together, a page per calendar per round, rounds sent as batches
over a few connections at once; a calendar whose cursor expired starts a full sync, one whose
request failed for a passing reason tries again in the next round (after a backoff), and one
that failed for good is reported without holding up the others.

Write: read the event, let the planner decide, write guarded by the ETag, and on a conflict
start over from a fresh read, a bounded number of times.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from assistant.annotate import AnnotationPlan
from assistant.config import Sync
from assistant.errors import (
    Conflict,
    CursorExpired,
    NotFound,
    ProviderError,
    TransientProviderError,
)
from assistant.models import EventRemoved, Meeting, Provider
from assistant.ports import CalendarChanges, Planner, SyncFailed, WriteOutcome, WriteResult
from assistant.retry import RetryPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncWindow:
    """The meetings a full sync lists, around now."""

    past: timedelta = timedelta(days=30)
    future: timedelta = timedelta(days=180)

    @classmethod
    def of(cls, sync: Sync) -> SyncWindow:
        return cls(timedelta(days=sync.past_days), timedelta(days=sync.future_days))


@dataclass
class Listing:
    """One calendar's sync in progress: where it is, and what it has gathered so far."""

    calendar: str
    cursor: str | None  # the provider's sync token or delta link; None: list everything
    page: str | None = None  # the next page's token or link, while paging
    full_sync: bool = False
    changes: dict[str, Meeting | EventRemoved] = field(default_factory=dict)
    failures: int = 0
    retry_after: float | None = None

    def restart_full(self) -> None:
        self.cursor, self.page, self.full_sync = None, None, True
        self.changes.clear()


@dataclass(frozen=True)
class Page:
    """One answer to a listing request, already read into meetings."""

    changes: list[Meeting | EventRemoved]
    next_page: str | None  # more to fetch before the cursor is known
    cursor: str = ""  # the provider's new cursor, on the last page


# Sends one request per listing, all in one round trip; per listing, its page or its error.
FetchPages = Callable[[list[Listing]], list[Page | ProviderError]]


def sync_calendars(
    cursors: Mapping[str, str | None],
    fetch: FetchPages,
    *,
    batch_size: int,
    max_connections: int,
    retry: RetryPolicy,
) -> Iterator[CalendarChanges | SyncFailed]:
    """Drive every calendar's listing to its end; see CalendarPort.sync for the contract."""
    pending = [Listing(calendar, cursor, full_sync=cursor is None)
               for calendar, cursor in cursors.items()]
    with ThreadPoolExecutor(max_connections, thread_name_prefix="calendar-sync") as pool:
        while pending:
            if any(listing.failures for listing in pending):
                retry.sleep(_pause(pending, retry))
            batches = [pending[i : i + batch_size] for i in range(0, len(pending), batch_size)]
            still_pending: list[Listing] = []
            answers = pool.map(lambda batch: _fetch_safely(fetch, batch), batches)
            for batch, pages in zip(batches, answers, strict=True):
                for listing, page in zip(batch, pages, strict=True):
                    outcome = _advance(listing, page, retry.attempts)
                    if outcome is None:
                        still_pending.append(listing)
                    else:
                        yield outcome
            pending = still_pending


def _fetch_safely(fetch: FetchPages, batch: list[Listing]) -> list[Page | ProviderError]:
    try:
        return fetch(batch)
    except ProviderError as err:
        # The whole round trip failed (or its one sign-in did): it counts for each calendar,
        # which tries again next round if the failure may pass.
        return [err] * len(batch)


def _advance(
    listing: Listing, page: Page | ProviderError, attempts: int
) -> CalendarChanges | SyncFailed | None:
    """Take in one answer; the finished result, or None while more requests are needed."""
    if isinstance(page, CursorExpired):
        log.info("the cursor of %s expired: full sync", listing.calendar)
        listing.restart_full()
        return None
    if isinstance(page, TransientProviderError):
        listing.failures += 1
        listing.retry_after = page.retry_after
        return SyncFailed(listing.calendar, page) if listing.failures >= attempts else None
    if isinstance(page, ProviderError):
        return SyncFailed(listing.calendar, page)
    listing.failures = 0
    for change in page.changes:
        listing.changes[change.event_id] = change  # a later page's version wins
    listing.page = page.next_page
    if listing.page:
        return None
    return CalendarChanges(listing.calendar, tuple(listing.changes.values()), page.cursor,
                           listing.full_sync)


def _pause(pending: list[Listing], retry: RetryPolicy) -> float:
    failed = [listing for listing in pending if listing.failures]
    attempt = min(listing.failures for listing in failed)
    retry_after = max((listing.retry_after or 0.0 for listing in failed), default=0.0)
    return retry.delay(attempt, retry_after)


@dataclass(frozen=True)
class Snapshot:
    """An event as read for writing: the meeting, and the provider's resource for the patch."""

    meeting: Meeting | EventRemoved
    resource: Any


def write_guarded(
    calendar: str,
    event_id: str,
    planner: Planner,
    *,
    read: Callable[[], Snapshot],
    patch_body: Callable[[Any, Any], dict[str, Any]],
    send: Callable[[Any, dict[str, Any]], Meeting | None],
    attempts: int,
) -> WriteOutcome:
    """Read, plan, and write guarded by the ETag, again from a fresh read after a conflict.

    patch_body(resource, plan) is the provider's change ({} when nothing changes);
    send(resource, body) writes it with If-Match on the resource's ETag and raises Conflict
    when the ETag no longer matches.
    """
    for attempt in range(1, attempts + 1):
        try:
            snapshot = read()
        except NotFound:
            return WriteOutcome(WriteResult.GONE, None, attempt)
        current = snapshot.meeting
        if isinstance(current, EventRemoved) or current.cancelled:
            return WriteOutcome(WriteResult.GONE, None, attempt)
        if not current.organizer_is_owner:
            return WriteOutcome(WriteResult.NOT_ORGANISER, current, attempt)
        plan = planner(current)
        if plan is None:
            return WriteOutcome(WriteResult.LEFT_ALONE, current, attempt)
        body = patch_body(snapshot.resource, plan)
        if not body:
            return WriteOutcome(WriteResult.UNCHANGED, current, attempt)
        try:
            written = send(snapshot.resource, body)
        except Conflict:
            log.info("event %s changed while we wrote it; reading it again", event_id)
            continue
        return WriteOutcome(WriteResult.WRITTEN, written, attempt)
    raise Conflict(f"the event kept changing over {attempts} attempts",
                   calendar=calendar, event_id=event_id)


class BatchedCalendar(abc.ABC):
    """A CalendarPort whose provider takes batched requests; subclasses say how to talk HTTP.

    They provide one round trip of listing requests (fetch_pages), a fresh read of one event
    (snapshot), the provider's patch body for a plan (patch_body) and the guarded write
    (send_patch, raising Conflict on an ETag mismatch), and the push and language methods of
    the port.
    """

    provider: Provider

    def __init__(
        self,
        *,
        retry: RetryPolicy,
        window: SyncWindow,
        batch_size: int,
        max_connections: int,
        write_attempts: int = 4,
        now: Callable[[], datetime] | None = None,  # the clock for the sync window
    ) -> None:
        self.retry = retry
        self.window = window
        self.batch_size = batch_size
        self.max_connections = max_connections
        self.write_attempts = write_attempts
        self.now = now or (lambda: datetime.now(UTC))

    def sync(self, cursors: Mapping[str, str | None]) -> Iterator[CalendarChanges | SyncFailed]:
        """Changes per calendar; see CalendarPort.sync."""
        return sync_calendars(cursors, self.fetch_pages, batch_size=self.batch_size,
                              max_connections=self.max_connections, retry=self.retry)

    def read(self, calendar: str, event_id: str) -> Meeting | EventRemoved:
        return self.snapshot(calendar, event_id).meeting

    def update(self, calendar: str, event_id: str, planner: Planner) -> WriteOutcome:
        """Write planner's change guarded by the ETag; see CalendarPort.update."""
        return write_guarded(
            calendar, event_id, planner,
            read=lambda: self.snapshot(calendar, event_id),
            patch_body=self.patch_body,
            send=lambda resource, body: self.send_patch(calendar, resource, body),
            attempts=self.write_attempts,
        )

    @abc.abstractmethod
    def fetch_pages(self, batch: list[Listing]) -> list[Page | ProviderError]: ...

    @abc.abstractmethod
    def snapshot(self, calendar: str, event_id: str) -> Snapshot: ...

    @abc.abstractmethod
    def patch_body(self, resource: Any, plan: AnnotationPlan) -> dict[str, Any]: ...

    @abc.abstractmethod
    def send_patch(self, calendar: str, resource: Any, body: dict[str, Any]) -> Meeting | None: ...

    @abc.abstractmethod
    def language(self, calendar: str) -> str | None:
        """The owner's language setting; see CalendarPort.language."""

    @abc.abstractmethod
    def close(self) -> None: ...
