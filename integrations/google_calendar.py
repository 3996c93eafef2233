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
- The owner's language: settings.get(setting="locale"), GET /users/me/settings/locale, answered
  with {"kind": "calendar#setting", "id": "locale", "value": "de"}; values such as "en_GB",
  "es_419", "pt_BR" use '_'
  (https://developers.google.com/workspace/calendar/api/v3/reference/settings/get and the
  Settings resource's table of ids and values, .../v3/reference/settings). There is no
  users/{email}: "me" is whoever the token acts as, so it is read only with a sign-in that acts
  as each calendar's own owner (domain-wide delegation with that user as subject, or a single
  user's sign-in for their own calendar), and with a token of the settings scope alone (see
  google_auth).
"""

from __future__ import annotations

import hmac
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from assistant.annotate import AnnotationPlan
from assistant.calendar_sync import (
    BatchedCalendar,
    Listing,
    Page,
    Snapshot,
    SyncWindow,
)
from assistant.config import Config
from assistant.errors import (
    AuthFailed,
    ConfigError,
    NotFound,
    PermissionDenied,
    ProviderError,
    UnreadableEvent,
)
from assistant.models import EventRemoved, Meeting, Provider
from assistant.ports import Channel
from assistant.redaction import redacted
from assistant.retry import RetryPolicy
from integrations.google_api import Call, Collections, GoogleApi
from integrations.google_auth import (
    SETTINGS_SCOPES,
    InstalledAppSignIn,
    ServiceAccountSignIn,
    SignIn,
    TokenSource,
)
from integrations.google_event import patch_for, read_google_event

log = logging.getLogger(__name__)

PAGE_SIZE = 250  # Google's default; a full sync of a busy calendar takes a few pages


class GoogleCalendar(BatchedCalendar):
    provider = Provider.GOOGLE

    def __init__(
        self,
        api: GoogleApi,
        *,
        window: SyncWindow = SyncWindow(),
        send_updates: str = "all",
        batch_size: int = 50,
        max_connections: int = 8,
        write_attempts: int = 4,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(retry=api.retry, window=window, batch_size=batch_size,
                         max_connections=max_connections, write_attempts=write_attempts, now=now)
        self.api = api
        self.send_updates = send_updates
        self._language_unreadable: set[str] = set()  # calendars already logged as such

    def close(self) -> None:
        self.api.close()

    # -- the owner's settings ----------------------------------------------------------------

    def language(self, calendar: str) -> str | None:
        """The owner's Calendar 'locale' setting; see CalendarPort.language."""
        call = Call(calendar, lambda api: api.settings.get(setting="locale"))
        try:
            setting = self.api.execute_settings(call)
        except (AuthFailed, PermissionDenied, NotFound) as err:
            if calendar not in self._language_unreadable:
                self._language_unreadable.add(calendar)
                needs = ("" if isinstance(err, NotFound) else
                         f"; reading it needs the scope {SETTINGS_SCOPES[0]}, delegated by the "
                         "admin (or consented to, for one user's sign-in)")
                log.info("Google does not let us read the language setting of %s (%s)%s",
                         redacted(calendar), type(err).__name__, needs)
            return None
        return _language_tag(setting.get("value") if isinstance(setting, Mapping) else None)

    # -- reading -----------------------------------------------------------------------------

    def fetch_pages(self, batch: list[Listing]) -> list[Page | ProviderError]:
        results = self.api.execute_batch([self._list_call(listing) for listing in batch])
        return [result if isinstance(result, ProviderError) else _page(listing.calendar, result)
                for listing, result in zip(batch, results, strict=True)]

    def _list_call(self, listing: Listing) -> Call:
        params: dict[str, Any] = {"calendarId": "primary", "maxResults": PAGE_SIZE,
                                  "singleEvents": False}
        if listing.cursor:
            params["syncToken"] = listing.cursor
        else:
            now = self.now()
            params["timeMin"] = (now - self.window.past).isoformat()
            params["timeMax"] = (now + self.window.future).isoformat()
        if listing.page:
            params["pageToken"] = listing.page
        return Call(listing.calendar, lambda api: api.events.list(**params))

    # -- writing -----------------------------------------------------------------------------

    def patch_body(self, resource: Any, plan: AnnotationPlan) -> dict[str, Any]:
        return patch_for(resource, plan)

    def send_patch(self, calendar: str, resource: Any, body: dict[str, Any]) -> Meeting | None:
        return _meeting(calendar, self.api.execute(self._patch_call(calendar, resource, body)))

    def snapshot(self, calendar: str, event_id: str) -> Snapshot:
        resource = self.api.execute(Call(
            calendar, lambda api: api.events.get(calendarId="primary", eventId=event_id), event_id
        ))
        try:
            return Snapshot(read_google_event(resource), resource)
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
        return Channel(Provider.GOOGLE, calendar, made["id"], made["resourceId"], token, expires,
                       address)

    def renew(self, channel: Channel, ttl: timedelta) -> Channel:
        """Google channels cannot be extended: open a new one, then stop the old one."""
        fresh = self.watch(channel.calendar, channel.address, channel.token, ttl)
        self.unwatch(channel)
        return fresh

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
        sign_in: SignIn = ServiceAccountSignIn.from_key_file(google.service_account_key_file)
    elif google.token_file is not None:
        sign_in = InstalledAppSignIn(google.token_file)
    else:
        raise ConfigError("google", ["no sign-in: set service_account_key_file or token_file"])
    settings_sign_in = sign_in.with_scopes(SETTINGS_SCOPES)
    settings_tokens = TokenSource(settings_sign_in) if settings_sign_in is not None else None
    api = GoogleApi(TokenSource(sign_in), settings_tokens=settings_tokens,
                    root_url=google.api_endpoint, retry=retry,
                    timeout_seconds=google.request_timeout_seconds)
    window = SyncWindow.of(config.sync)
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


def _language_tag(value: Any) -> str | None:
    """A provider's locale value as a BCP 47-shaped tag ("en_GB" -> "en-GB"), None if blank."""
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().replace("_", "-")


def _page(calendar: str, listing: Mapping[str, Any]) -> Page:
    changes = [change for item in listing.get("items", [])
               if (change := _read_item(calendar, item)) is not None]
    return Page(changes, listing.get("nextPageToken"), listing.get("nextSyncToken", ""))


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

