"""Microsoft 365 calendars as the assistant sees them: the CalendarPort over Microsoft Graph v1.0.

- Sync is a delta query on each mailbox's calendar view over the sync window
  (https://learn.microsoft.com/en-us/graph/delta-query-events): pages follow @odata.nextLink to
  the @odata.deltaLink, which is the cursor; deleted events arrive with "@removed"; an expired
  delta link means a clean full sync. Mailboxes are synced 20 to a JSON $batch, one request per
  mailbox at a time, well inside Outlook's limit of four concurrent requests per mailbox
  (https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits).
- Writes are PATCH with If-Match on @odata.etag; a 412 means someone changed the event, so it
  is read and planned again (https://learn.microsoft.com/en-us/graph/api/event-update). The mark
  is a single-value extended property; a Teams link is asked for with isOnlineMeeting.
- Change notifications: subscriptions on /users/{id}/events with a clientState secret, renewed
  before Outlook's maximum lifetime, lifecycle events handled
  (https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks,
  https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events). A
  notification only says which mailbox to sync.
- The owner's language: GET /users/{id}/mailboxSettings/language, a localeInfo
  {"locale": "de-DE", "displayName": "German (Germany)"}
  (https://learn.microsoft.com/en-us/graph/api/user-get-mailboxsettings,
  https://learn.microsoft.com/en-us/graph/api/resources/localeinfo). It needs MailboxSettings.Read,
  which the admin may not have granted: the 403 ErrorAccessDenied then means "no language".
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import requests

from assistant.annotate import AnnotationPlan
from assistant.calendar_sync import (
    BatchedCalendar,
    Listing,
    Page,
    Snapshot,
    SyncWindow,
)
from assistant.config import Config, secret_from_env
from assistant.errors import NotFound, PermissionDenied, ProviderError, UnreadableEvent
from assistant.models import Format, Meeting, Provider
from assistant.ports import Channel, ChannelLookup
from assistant.redaction import redacted
from assistant.retry import RetryPolicy
from integrations.graph_api import GraphApi, GraphRequest
from integrations.graph_event import MARK_PROPERTY, patch_for, read_graph_event
from integrations.microsoft_auth import (
    DeviceCodeSignIn,
    GraphSignIn,
    app_sign_in,
    device_code_app,
    load_token_cache,
)

log = logging.getLogger(__name__)

PAGE_SIZE = 50  # events per delta page (Prefer: odata.maxpagesize)
MAX_SUBSCRIPTION = timedelta(minutes=10_080 - 10)  # Outlook's limit, with a little room
# Items read from one notification POST. Graph batches a few changes into one; more than this
# is someone else's flood, and the rest wait for the next poll.
MAX_NOTIFICATION_ITEMS = 1_000
_EXPAND_MARK = f"singleValueExtendedProperties($filter=id eq '{MARK_PROPERTY}')"


class MicrosoftCalendar(BatchedCalendar):
    provider = Provider.MICROSOFT

    def __init__(
        self,
        api: GraphApi,
        *,
        window: SyncWindow = SyncWindow(),
        batch_size: int = 20,
        max_connections: int = 4,
        write_attempts: int = 4,
        categories: Mapping[Format, str] | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(retry=api.retry, window=window, batch_size=batch_size,
                         max_connections=max_connections, write_attempts=write_attempts, now=now)
        self.api = api
        self.categories = categories
        self._language_unreadable: set[str] = set()  # mailboxes already logged as such

    def close(self) -> None:
        self.api.close()

    # -- the owner's settings ----------------------------------------------------------------

    def language(self, calendar: str) -> str | None:
        """The mailbox's language (mailboxSettings.language.locale); see CalendarPort.language."""
        request = GraphRequest("GET", f"/users/{quote(calendar)}/mailboxSettings/language",
                               calendar)
        try:
            answer = self.api.call(request)
        except (PermissionDenied, NotFound) as err:
            if calendar not in self._language_unreadable:
                self._language_unreadable.add(calendar)
                needs = ("" if isinstance(err, NotFound) else
                         "; reading it needs the application permission MailboxSettings.Read")
                log.info("Graph does not let us read the language setting of %s (%s)%s",
                         redacted(calendar), type(err).__name__, needs)
            return None
        locale = answer.get("locale") if isinstance(answer, Mapping) else None
        if not isinstance(locale, str) or not locale.strip():
            return None
        return locale.strip().replace("_", "-")

    # -- reading -----------------------------------------------------------------------------

    def fetch_pages(self, batch: list[Listing]) -> list[Page | ProviderError]:
        results = self.api.batch([self._delta_request(listing) for listing in batch])
        return [result if isinstance(result, ProviderError) else _page(listing.calendar, result)
                for listing, result in zip(batch, results, strict=True)]

    def _delta_request(self, listing: Listing) -> GraphRequest:
        url = listing.page or listing.cursor
        if not url:
            now = self.now().astimezone(UTC)
            start, end = now - self.window.past, now + self.window.future
            url = (f"/users/{quote(listing.calendar)}/calendarView/delta"
                   f"?startDateTime={_iso(start)}&endDateTime={_iso(end)}")
        return GraphRequest("GET", url, listing.calendar,
                            headers={"Prefer": f"odata.maxpagesize={PAGE_SIZE}"})

    # -- writing -----------------------------------------------------------------------------

    def patch_body(self, resource: Any, plan: AnnotationPlan) -> dict[str, Any]:
        return patch_for(resource, plan, self.categories)

    def snapshot(self, calendar: str, event_id: str) -> Snapshot:
        resource = self.api.call(GraphRequest("GET", _event_url(calendar, event_id), calendar,
                                              event_id))
        try:
            return Snapshot(read_graph_event(resource), resource)
        except UnreadableEvent as err:
            raise NotFound(f"Graph sent an event we cannot read: {err}",
                           calendar=calendar, event_id=event_id) from err

    def send_patch(self, calendar: str, resource: Any, body: dict[str, Any]) -> Meeting:
        event_id = str(resource["id"])
        written = self.api.call(GraphRequest(
            "PATCH", _event_url(calendar, event_id), calendar, event_id, body,
            headers={"If-Match": str(resource.get("@odata.etag", "*"))},
        ))
        meeting = read_graph_event(written)
        if not isinstance(meeting, Meeting):
            raise NotFound("Graph answered a write with a removal", calendar=calendar,
                           event_id=event_id)
        return meeting

    # -- change notifications ----------------------------------------------------------------

    def watch(self, calendar: str, address: str, token: str, ttl: timedelta) -> Channel:
        body = {
            "changeType": "created,updated,deleted",
            "notificationUrl": address,
            "lifecycleNotificationUrl": address,
            "resource": f"/users/{calendar}/events",
            "expirationDateTime": _iso(self._expiry(ttl)),
            "clientState": token,
        }
        made = self.api.call(GraphRequest("POST", "/subscriptions", calendar, body=body))
        return Channel(Provider.MICROSOFT, calendar, made["id"], made["resource"], token,
                       _parse_iso(made["expirationDateTime"]), address)

    def renew(self, channel: Channel, ttl: timedelta) -> Channel:
        """Extend a subscription; this also re-authorizes it after reauthorizationRequired."""
        body = {"expirationDateTime": _iso(self._expiry(ttl))}
        made = self.api.call(GraphRequest("PATCH", f"/subscriptions/{channel.channel_id}",
                                          channel.calendar, body=body))
        return replace(channel, expires=_parse_iso(made["expirationDateTime"]))

    def unwatch(self, channel: Channel) -> None:
        try:
            self.api.call(GraphRequest("DELETE", f"/subscriptions/{channel.channel_id}",
                                       channel.calendar))
        except NotFound:
            log.info("subscription %s for %s was already gone", channel.channel_id,
                     channel.calendar)

    def _expiry(self, ttl: timedelta) -> datetime:
        return self.now().astimezone(UTC) + min(ttl, MAX_SUBSCRIPTION)


@dataclass
class Notices:
    """What a batch of Graph notifications asks of us."""

    sync: set[str] = field(default_factory=set)  # mailboxes to delta-sync now
    renew: list[Channel] = field(default_factory=list)  # reauthorizationRequired
    recreate: list[Channel] = field(default_factory=list)  # subscriptionRemoved
    rejected: int = 0  # items without one of our subscriptions and its clientState


def read_notifications(payload: Any, channels: ChannelLookup) -> Notices:
    """Sort the items of a notification POST; items that fail the clientState check are dropped.

    channels finds ours among the subscription ids named, asked once for them all. Only the
    first MAX_NOTIFICATION_ITEMS items are read: anyone can post, and a notification only
    makes a calendar due, which the next poll does anyway. A "missed" lifecycle event, like any
    change, only asks for a delta sync: the delta query catches up with whatever the missed
    notifications were about.
    """
    values = payload.get("value") if isinstance(payload, dict) else None
    values = values if isinstance(values, list) else []
    items = [item for item in values[:MAX_NOTIFICATION_ITEMS] if isinstance(item, dict)]
    notices = Notices(rejected=len(values) - len(items))
    ours = channels({str(item.get("subscriptionId")) for item in items})
    for item in items:
        channel = ours.get(str(item.get("subscriptionId")))
        sent = str(item.get("clientState") or "")
        if channel is None or not hmac.compare_digest(sent.encode(), channel.token.encode()):
            notices.rejected += 1
            continue
        event = item.get("lifecycleEvent")
        if event == "reauthorizationRequired":
            notices.renew.append(channel)
        elif event == "subscriptionRemoved":
            notices.recreate.append(channel)
        notices.sync.add(channel.calendar)
    return notices


def microsoft_calendar_from_config(
    config: Config, retry: RetryPolicy = RetryPolicy(),
    login_http: requests.Session | None = None,
) -> MicrosoftCalendar:
    """The adapter the config describes; ConfigError if its sign-in is incomplete."""
    settings = config.microsoft
    sign_in: GraphSignIn
    if settings.token_cache_file is not None:
        cache_file = settings.token_cache_file
        cache = load_token_cache(cache_file)  # a damaged file is a config error, found now
        sign_in = DeviceCodeSignIn(lambda: device_code_app(
            settings.tenant, settings.client_id, cache, authority=settings.authority,
            http_client=login_http), cache_file)
    else:
        secret = None
        if settings.client_secret_env is not None:
            secret = secret_from_env(settings.client_secret_env, "microsoft.client_secret_env")
        sign_in = app_sign_in(settings.tenant, settings.client_id, authority=settings.authority,
                              graph_endpoint=settings.graph_endpoint, secret=secret,
                              certificate_file=settings.certificate_file, http_client=login_http)
    api = GraphApi(sign_in, graph_endpoint=settings.graph_endpoint, retry=retry,
                   max_connections=settings.max_connections,
                   timeout_seconds=settings.request_timeout_seconds)
    categories = None
    if settings.categories is not None:
        categories = {Format.IN_PERSON: settings.categories.in_person,
                      Format.VIRTUAL: settings.categories.virtual}
    window = SyncWindow.of(config.sync)
    return MicrosoftCalendar(api, window=window, batch_size=settings.batch_size,
                             max_connections=settings.max_connections, categories=categories)


def _page(calendar: str, answer: Mapping[str, Any]) -> Page:
    """The changes in one delta page; a series comes as its master (handled once, as a series),
    so the stubs Graph lists for its plain occurrences are left out."""
    changes = []
    for item in answer.get("value", []):
        if item.get("type") == "occurrence" and "@removed" not in item:
            continue
        try:
            changes.append(read_graph_event(item))
        except UnreadableEvent as err:
            log.error("skipping an unreadable event %s in %s: %s", item.get("id"), calendar, err)
    return Page(changes, answer.get("@odata.nextLink"), answer.get("@odata.deltaLink", ""))


def _event_url(calendar: str, event_id: str) -> str:
    return f"/users/{quote(calendar)}/events/{quote(event_id, safe='')}?$expand={_EXPAND_MARK}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
