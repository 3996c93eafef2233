"""Google Calendar as the assistant sees it: the CalendarPort over the Calendar API v3.

- Sync follows https://developers.google.com/calendar/api/guides/sync: a full listing of the
  window (singleEvents=false, so a recurring series comes once, as its master) ends with a
  nextSyncToken; later listings with that token return only what changed, deletions included;
  a 410 means start over with a full listing. Many calendars are listed together in batch
  requests (https://developers.google.com/calendar/api/guides/batch), several batches at once.
- Writes are events.patch with If-Match on the event's ETag
  (https://developers.google.com/calendar/api/guides/version-resources); a 412 means someone
  changed the event, so it is read and planned again. conferenceDataVersion=1 is sent only
  when a Meet link is to be created
  (https://developers.google.com/calendar/api/guides/create-events#conferencing).
- Push: events.watch channels and channels.stop
  (https://developers.google.com/calendar/api/guides/push). A notification carries no event
  data; it only says which calendar to sync.
"""

from __future__ import annotations

import hmac
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from assistant.config import Config
from assistant.errors import (
    ConfigError,
    Conflict,
    CursorExpired,
    NotFound,
    ProviderError,
    TransientProviderError,
    UnreadableEvent,
)
from assistant.models import EventRemoved, Meeting, Provider
from assistant.ports import CalendarChanges, Channel, Planner, SyncFailed, WriteOutcome, WriteResult
from assistant.retry import RetryPolicy
from integrations.google_api import Call, Collections, GoogleApi
from integrations.google_auth import InstalledAppSignIn, ServiceAccountSignIn, SignIn, TokenSource
from integrations.google_event import patch_for, read_google_event

log = logging.getLogger(__name__)

PAGE_SIZE = 250  # Google's default; a full sync of a busy calendar takes a few pages


@dataclass(frozen=True)
class SyncWindow:
    past: timedelta = timedelta(days=30)
    future: timedelta = timedelta(days=180)


@dataclass
class _Listing:
    """One calendar's sync in progress: where it is, and what it has gathered so far."""

    calendar: str
    sync_token: str | None
    page_token: str | None = None
    full_sync: bool = False
    changes: dict[str, Meeting | EventRemoved] = field(default_factory=dict)
    failures: int = 0
    retry_after: float | None = None

    def restart_full(self) -> None:
        self.sync_token, self.page_token, self.full_sync = None, None, True
        self.changes.clear()


class GoogleCalendar:
    provider = Provider.GOOGLE

    def __init__(
        self,
        api: GoogleApi,
        *,
        window: SyncWindow = SyncWindow(),
        send_updates: str = "all",
        batch_size: int = 50,
        max_connections: int = 4,
        write_attempts: int = 4,
        now: Callable[[], datetime] | None = None,  # the clock for the sync window
    ) -> None:
        self.api = api
        self.window = window
        self.send_updates = send_updates
        self.batch_size = batch_size
        self.max_connections = max_connections
        self.write_attempts = write_attempts
        self._now = now or (lambda: datetime.now(UTC))

    def close(self) -> None:
        self.api.close()

    # -- reading -----------------------------------------------------------------------------

    def sync(self, cursors: Mapping[str, str | None]) -> Iterator[CalendarChanges | SyncFailed]:
        """Changes per calendar; see CalendarPort.sync."""
        pending = [_Listing(calendar, token, full_sync=token is None)
                   for calendar, token in cursors.items()]
        with ThreadPoolExecutor(self.max_connections, thread_name_prefix="google-sync") as pool:
            while pending:
                if any(listing.failures for listing in pending):
                    self.api.retry.sleep(self._pause(pending))
                batches = [pending[i : i + self.batch_size]
                           for i in range(0, len(pending), self.batch_size)]
                still_pending: list[_Listing] = []
                answers = pool.map(self._list_pages, batches)
                for batch, results in zip(batches, answers, strict=True):
                    for listing, result in zip(batch, results, strict=True):
                        outcome = self._advance(listing, result)
                        if outcome is None:
                            still_pending.append(listing)
                        else:
                            yield outcome
                pending = still_pending

    def read(self, calendar: str, event_id: str) -> Meeting | EventRemoved:
        return self._read(calendar, event_id)[0]

    def _list_pages(self, batch: list[_Listing]) -> list[Any | ProviderError]:
        try:
            return self.api.execute_batch([self._list_call(listing) for listing in batch])
        except TransientProviderError as err:
            return [err] * len(batch)  # the whole round trip failed: each calendar tries again

    def _list_call(self, listing: _Listing) -> Call:
        params: dict[str, Any] = {"calendarId": "primary", "maxResults": PAGE_SIZE,
                                  "singleEvents": False}
        if listing.sync_token:
            params["syncToken"] = listing.sync_token
        else:
            now = self._now()
            params["timeMin"] = (now - self.window.past).isoformat()
            params["timeMax"] = (now + self.window.future).isoformat()
        if listing.page_token:
            params["pageToken"] = listing.page_token
        return Call(listing.calendar, lambda api: api.events.list(**params))

    def _advance(
        self, listing: _Listing, result: Any | ProviderError
    ) -> CalendarChanges | SyncFailed | None:
        """Take in one page; the finished result, or None while more requests are needed."""
        if isinstance(result, CursorExpired):
            log.info("sync token of %s expired: full sync", listing.calendar)
            listing.restart_full()
            return None
        if isinstance(result, TransientProviderError):
            listing.failures += 1
            listing.retry_after = result.retry_after
            if listing.failures >= self.api.retry.attempts:
                return SyncFailed(listing.calendar, result)
            return None
        if isinstance(result, ProviderError):
            return SyncFailed(listing.calendar, result)
        listing.failures = 0
        for item in result.get("items", []):
            change = _read_item(listing.calendar, item)
            if change is not None:
                listing.changes[change.event_id] = change
        listing.page_token = result.get("nextPageToken")
        if listing.page_token:
            return None
        return CalendarChanges(listing.calendar, tuple(listing.changes.values()),
                               result.get("nextSyncToken", ""), listing.full_sync)

    def _pause(self, pending: list[_Listing]) -> float:
        failed = [listing for listing in pending if listing.failures]
        attempt = min(listing.failures for listing in failed)
        retry_after = max((listing.retry_after or 0.0 for listing in failed), default=0.0)
        return self.api.retry.delay(attempt, retry_after)

    # -- writing -----------------------------------------------------------------------------

    def update(self, calendar: str, event_id: str, planner: Planner) -> WriteOutcome:
        """Write planner's change guarded by the ETag; see CalendarPort.update."""
        for attempt in range(1, self.write_attempts + 1):
            try:
                current, resource = self._read(calendar, event_id)
            except NotFound:
                return WriteOutcome(WriteResult.GONE, None, attempt)
            if isinstance(current, EventRemoved) or current.cancelled:
                return WriteOutcome(WriteResult.GONE, None, attempt)
            if not current.organizer_is_owner:
                return WriteOutcome(WriteResult.NOT_ORGANISER, current, attempt)
            plan = planner(current)
            if plan is None:
                return WriteOutcome(WriteResult.LEFT_ALONE, current, attempt)
            body = patch_for(resource, plan)
            if not body:
                return WriteOutcome(WriteResult.UNCHANGED, current, attempt)
            try:
                written = self.api.execute(self._patch_call(calendar, resource, body))
            except Conflict:
                log.info("event %s changed while we wrote it; reading it again", event_id)
                continue
            return WriteOutcome(WriteResult.WRITTEN, _meeting(calendar, written), attempt)
        raise Conflict(f"the event kept changing over {self.write_attempts} attempts",
                       calendar=calendar, event_id=event_id)

    def _read(self, calendar: str, event_id: str) -> tuple[Meeting | EventRemoved, dict[str, Any]]:
        resource = self.api.execute(Call(
            calendar, lambda api: api.events.get(calendarId="primary", eventId=event_id), event_id
        ))
        try:
            return read_google_event(resource), resource
        except UnreadableEvent as err:
            raise NotFound(f"Google sent an event we cannot read: {err}",
                           calendar=calendar, event_id=event_id) from err

    def _patch_call(self, calendar: str, resource: dict[str, Any], body: dict[str, Any]) -> Call:
        event_id, etag = resource["id"], resource.get("etag", "")

        def build(api: Collections) -> Any:
            extra = {"conferenceDataVersion": 1} if "conferenceData" in body else {}
            request = api.events.patch(
                calendarId="primary", eventId=event_id, body=body,
                sendUpdates=self.send_updates, **extra,
            )
            request.headers["If-Match"] = etag
            return request

        return Call(calendar, build, event_id)

    # -- push --------------------------------------------------------------------------------

    def watch(self, calendar: str, address: str, token: str, ttl: timedelta) -> Channel:
        body = {"id": str(uuid.uuid4()), "type": "web_hook", "address": address, "token": token,
                "params": {"ttl": str(int(ttl.total_seconds()))}}
        made = self.api.execute(Call(
            calendar, lambda api: api.events.watch(calendarId="primary", body=body)
        ))
        expires = datetime.fromtimestamp(int(made["expiration"]) / 1000, UTC)
        return Channel(Provider.GOOGLE, calendar, made["id"], made["resourceId"], token, expires)

    def unwatch(self, channel: Channel) -> None:
        body = {"id": channel.channel_id, "resourceId": channel.resource_id}
        try:
            self.api.execute(Call(channel.calendar, lambda api: api.channels.stop(body=body)))
        except NotFound:
            log.info("channel %s for %s was already gone", channel.channel_id, channel.calendar)


def google_calendar_from_config(
    config: Config, retry: RetryPolicy = RetryPolicy()
) -> GoogleCalendar:
    """The adapter the config describes; raises ConfigError if its sign-in file is unusable."""
    google = config.google
    if google.service_account_key_file is not None:
        sign_in: SignIn = ServiceAccountSignIn(google.service_account_key_file)
    elif google.token_file is not None:
        sign_in = InstalledAppSignIn(google.token_file)
    else:
        raise ConfigError("google", ["no sign-in: set service_account_key_file or token_file"])
    api = GoogleApi(TokenSource(sign_in), root_url=google.api_endpoint, retry=retry)
    window = SyncWindow(timedelta(days=config.sync.past_days),
                        timedelta(days=config.sync.future_days))
    return GoogleCalendar(api, window=window, send_updates=google.send_updates,
                          batch_size=google.batch_size, max_connections=google.max_connections)


def calendar_to_sync(headers: Mapping[str, str], channels: Mapping[str, Channel]) -> str | None:
    """The calendar a Google push notification asks us to sync, or None to ignore it.

    Google sends no event data, only X-Goog-* headers; a notification counts only if its
    channel is one of ours and it carries that channel's secret token. Header names are
    matched without regard to case, as HTTP requires.
    """
    lower = {name.lower(): value for name, value in headers.items()}
    channel = channels.get(lower.get("x-goog-channel-id", ""))
    if channel is None:
        return None
    sent = lower.get("x-goog-channel-token", "")
    if not hmac.compare_digest(sent.encode(), channel.token.encode()):
        return None
    if lower.get("x-goog-resource-id") != channel.resource_id:
        return None
    return channel.calendar


def _read_item(calendar: str, item: Mapping[str, Any]) -> Meeting | EventRemoved | None:
    try:
        return read_google_event(item)
    except UnreadableEvent as err:
        # Nothing can be done with it; say so loudly rather than stop the whole calendar.
        log.error("skipping an unreadable event %s in %s: %s", item.get("id"), calendar, err)
        return None


def _meeting(calendar: str, resource: Mapping[str, Any]) -> Meeting | None:
    meeting = _read_item(calendar, resource)
    return meeting if isinstance(meeting, Meeting) else None

