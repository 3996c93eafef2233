"""The Calendar API emulator's state: calendars, events, changes, sync and page tokens.

Behaviour follows Google's documentation of Calendar API v3:
- Events resource and its read-only fields:
  https://developers.google.com/calendar/api/v3/reference/events#resource
- events.list (timeMin is an exclusive bound on an event's end, timeMax on its start; maxResults
  250 by default and never above 2500; an unspecified but stable order):
  https://developers.google.com/calendar/api/v3/reference/events/list
- incremental sync: nextSyncToken only on the last page; deletions always included; timeMin,
  timeMax, q, orderBy, iCalUID, updatedMin and extended-property filters are refused with a
  syncToken; an expired token answers 410 fullSyncRequired; the token is not bound to the
  window of the full sync it came from: https://developers.google.com/calendar/api/guides/sync
- patch semantics: given fields replace, arrays are replaced whole, objects such as
  extendedProperties.private are merged key by key and a null removes a key:
  https://developers.google.com/calendar/api/guides/extended-properties
- deleted events: events.get still returns them with status "cancelled"; an incremental list
  reports them with little more than the id (Event.status in the reference above).
- a meeting with guests appears, under the same id, in each guest's own calendar; only the
  organiser's copy can be edited, and guests' copies follow it.

With singleEvents=true a series is listed as its instances (see google_recurrence); without
it, as its master, listed when any of its occurrences falls in the window.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from integrations.sandbox import google_fields as fields
from integrations.sandbox import google_recurrence as recurrence
from integrations.sandbox.google_errors import bad_request, gone_full_sync, google_error, not_found

_ID_ALPHABET = "abcdefghijklmnopqrstuv0123456789"  # base32hex, as Google's event ids


@dataclass
class Calendar:
    calendar_id: str  # the owner's email address
    time_zone: str = "Europe/Berlin"
    locale: str = "en"  # the owner's Calendar language (the settings resource's "locale")
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> resource, in order
    changed_at: dict[str, int] = field(default_factory=dict)  # id -> change number
    token_generation: int = 0  # raised to expire every sync token handed out so far


class CalendarStore:
    """Every calendar of the emulated domain; thread-safe."""

    def __init__(self, base_url: str = "https://www.googleapis.com/") -> None:
        self.base_url = base_url
        self.calendars: dict[str, Calendar] = {}
        self.sent_updates: list[tuple[str, str, str]] = []  # (event id, method, sendUpdates)
        self._last_change_number = 0
        self._etag = itertools.count(3_181_161_784_712_000, 1000)
        self.lock = threading.RLock()
        self.on_change: Callable[[str], None] = lambda calendar_id: None  # push notifications

    # -- calendars ---------------------------------------------------------------------------

    def add_calendar(self, calendar_id: str, time_zone: str = "Europe/Berlin",
                     locale: str = "en") -> Calendar:
        with self.lock:
            return self.calendars.setdefault(calendar_id,
                                             Calendar(calendar_id, time_zone, locale))

    def calendar(self, calendar_id: str) -> Calendar:
        found = self.calendars.get(calendar_id)
        if found is None:
            raise not_found()
        return found

    # -- reading -----------------------------------------------------------------------------

    def get(self, calendar_id: str, event_id: str) -> dict[str, Any]:
        with self.lock:
            calendar = self.calendar(calendar_id)
            event = calendar.events.get(event_id) or self._generated_instance(calendar, event_id)
            if event is None:
                raise not_found()
            return copy.deepcopy(event)

    def _generated_instance(self, calendar: Calendar, event_id: str) -> dict[str, Any] | None:
        """An instance of a series that has no exception stored for it (yet)."""
        master_id, _, suffix = event_id.rpartition("_")
        master = calendar.events.get(master_id)
        if not suffix or master is None or not master.get("recurrence"):
            return None
        start = fields.instant(master["start"], calendar.time_zone)
        candidates = recurrence.instances(master, [], calendar.time_zone, start,
                                          start + fields.SERIES_HORIZON)
        return next((c for c in candidates if c["id"] == event_id), None)

    def list_events(self, calendar_id: str, params: dict[str, str]) -> dict[str, Any]:
        """One page of events.list, with nextPageToken or, on the last page, nextSyncToken."""
        with self.lock:
            calendar = self.calendar(calendar_id)
            page_size = fields.page_size(params.get("maxResults"))
            if params.get("pageToken"):
                page = fields.decode(params["pageToken"], "pageToken")
                query, since, snapshot = page["q"], page["since"], page["snapshot"]
                after = tuple(page["after"])
                if query != fields.query_key(params):
                    raise bad_request("invalid", "Invalid page token value.")
            else:
                since = self._since(calendar, params)
                snapshot, after = self._last_change_number, (-1, -1)
                query = fields.query_key(params)
            selected = self._select(calendar, params, since, snapshot)
            remaining = [(i, event) for i, event in selected if i > after]
            body = _events_envelope(calendar)
            incremental = since is not None
            body["items"] = [_as_listed(event, incremental) for _, event in remaining[:page_size]]
            if len(remaining) > page_size:
                body["nextPageToken"] = fields.encode(
                    {"q": query, "since": since, "snapshot": snapshot,
                     "after": remaining[page_size - 1][0]}
                )
            else:
                body["nextSyncToken"] = fields.encode(
                    {"cal": calendar.calendar_id, "at": snapshot, "gen": calendar.token_generation}
                )
            return body

    def _since(self, calendar: Calendar, params: dict[str, str]) -> int | None:
        """The change number a sync token stands for, or None for a full listing."""
        token = params.get("syncToken")
        if not token:
            return None
        forbidden = {"timeMin", "timeMax", "q", "orderBy", "iCalUID", "updatedMin",
                     "privateExtendedProperty", "sharedExtendedProperty"} & set(params)
        if forbidden:
            raise bad_request("invalid", f"Sync token cannot be used with {sorted(forbidden)[0]}.")
        if params.get("showDeleted") == "false":
            raise bad_request("invalid", "showDeleted cannot be false with a sync token.")
        decoded = fields.decode(token, "syncToken")
        if decoded.get("cal") != calendar.calendar_id:
            raise bad_request("invalid", "Invalid sync token value.")
        if decoded.get("gen") != calendar.token_generation:
            raise gone_full_sync()
        return int(decoded["at"])

    def _select(
        self, calendar: Calendar, params: dict[str, str], since: int | None, snapshot: int
    ) -> list[tuple[tuple[int, int], dict[str, Any]]]:
        """((position, instance), event) of every event the query covers, in a stable order.

        With singleEvents=true a series is listed as its instances, in the master's place.
        """
        single = params.get("singleEvents") == "true"
        selected: list[tuple[tuple[int, int], dict[str, Any]]] = []
        for position, (event_id, event) in enumerate(calendar.events.items()):
            changed = calendar.changed_at[event_id]
            if changed > snapshot or (since is not None and changed <= since):
                continue  # changed after this listing began (the next sync has it), or old
            if single and event.get("recurrence"):
                listed = [(k, instance) for k, instance
                          in enumerate(self._instances(calendar, event, params, since))]
            elif single and event.get("recurringEventId") and since is None:
                continue  # an exception: listed with its series, in its instance's place
            else:
                listed = [(0, event)]
            for k, item in listed:
                if since is not None or fields.in_full_listing(item, params, calendar.time_zone):
                    selected.append(((position, k), item))
        return selected

    def _instances(
        self, calendar: Calendar, master: dict[str, Any], params: dict[str, str],
        since: int | None,
    ) -> list[dict[str, Any]]:
        start = fields.instant(master["start"], calendar.time_zone)
        if since is None and params.get("timeMin"):
            start = fields.parse_bound(params["timeMin"], "timeMin")
        end = start + fields.SERIES_HORIZON
        if since is None and params.get("timeMax"):
            end = fields.parse_bound(params["timeMax"], "timeMax")
        exceptions = [e for e in calendar.events.values()
                      if e.get("recurringEventId") == master["id"]]
        return recurrence.instances(master, exceptions, calendar.time_zone, start, end)

    # -- writing -----------------------------------------------------------------------------

    def insert(self, calendar_id: str, body: dict[str, Any], *, conference: bool) -> dict[str, Any]:
        with self.lock:
            calendar = self.calendar(calendar_id)
            event_id = body.get("id") or "".join(secrets.choice(_ID_ALPHABET) for _ in range(26))
            if event_id in calendar.events:
                raise google_error(409, "duplicate", "The requested identifier already exists.")
            now = fields.now_text()
            event = {
                "kind": "calendar#event",
                "id": event_id,
                "status": "confirmed",
                "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
                "created": now,
                "creator": {"email": calendar_id, "self": True},
                "organizer": {"email": calendar_id, "self": True},
                "iCalUID": f"{event_id}@google.com",
                "sequence": 0,
                "reminders": {"useDefault": True},
                "eventType": "default",
            }
            fields.merge(event, fields.writable(body))
            self._apply_conference(event, body, conference)
            fields.check_times(event, calendar.time_zone)
            fields.fill_attendees(event)
            self._save(calendar, event)
            return copy.deepcopy(event)

    def patch(
        self, calendar_id: str, event_id: str, body: dict[str, Any], *,
        if_match: str | None, conference: bool, replace: bool = False,
    ) -> dict[str, Any]:
        with self.lock:
            calendar = self.calendar(calendar_id)
            # Patching one instance of a series stores it as an exception, as Google does.
            current = calendar.events.get(event_id) or self._generated_instance(calendar, event_id)
            if current is None:
                raise not_found()
            if if_match is not None and if_match not in ("*", current["etag"]):
                raise google_error(412, "conditionNotMet", "Precondition Failed",
                                   location="If-Match", location_type="header")
            if not current.get("organizer", {}).get("self"):
                raise google_error(403, "forbiddenForNonOrganizer",
                                   "Shared properties can only be changed by the organizer "
                                   "of the event.")
            event = copy.deepcopy(current)
            if replace:
                for key in [k for k in event if k not in fields.READ_ONLY | {"conferenceData"}]:
                    del event[key]
            fields.merge(event, fields.writable(body))
            self._apply_conference(event, body, conference)
            fields.check_times(event, calendar.time_zone)
            fields.fill_attendees(event)
            if (event.get("start"), event.get("end")) != (current.get("start"), current.get("end")):
                event["sequence"] = current.get("sequence", 0) + 1
            self._save(calendar, event)
            return copy.deepcopy(event)

    def delete(self, calendar_id: str, event_id: str) -> None:
        with self.lock:
            calendar = self.calendar(calendar_id)
            current = calendar.events.get(event_id) or self._generated_instance(calendar, event_id)
            if current is None:
                raise not_found()
            if current.get("status") == "cancelled":
                raise google_error(410, "deleted", "Resource has been deleted")
            self._save(calendar, {**current, "status": "cancelled"})

    def expire_sync_tokens(self, calendar_id: str | None = None) -> None:
        """Make every sync token handed out so far answer 410 (one calendar, or all)."""
        with self.lock:
            for calendar in self.calendars.values():
                if calendar_id in (None, calendar.calendar_id):
                    calendar.token_generation += 1

    def _save(self, calendar: Calendar, event: dict[str, Any]) -> None:
        event["etag"] = f'"{next(self._etag)}"'
        event["updated"] = fields.now_text()
        calendar.events[event["id"]] = event
        calendar.changed_at[event["id"]] = self._next_change()
        self.on_change(calendar.calendar_id)
        self._copy_to_guests(calendar, event)

    def _copy_to_guests(self, organiser: Calendar, event: dict[str, Any]) -> None:
        """Keep each guest's copy in step with the organiser's event."""
        if not event.get("organizer", {}).get("self"):
            return
        for attendee in event.get("attendees", []):
            guest = self.calendars.get(attendee.get("email", ""))
            if guest is None or guest is organiser:
                continue
            copied = copy.deepcopy(event)
            copied["organizer"] = {k: v for k, v in event["organizer"].items() if k != "self"}
            copied["creator"] = {k: v for k, v in event.get("creator", {}).items() if k != "self"}
            copied.pop("extendedProperties", None)  # private properties stay with one copy
            copied["attendees"] = [
                {**a, "self": True} if a.get("email") == guest.calendar_id else
                {k: v for k, v in a.items() if k != "self"}
                for a in event["attendees"]
            ]
            copied["etag"] = f'"{next(self._etag)}"'
            guest.events[event["id"]] = copied
            guest.changed_at[event["id"]] = self._next_change()
            self.on_change(guest.calendar_id)

    def _apply_conference(self, event: dict[str, Any], body: dict[str, Any], enabled: bool) -> None:
        """Create a Meet conference for a createRequest, once per requestId.

        Without conferenceDataVersion=1 Google ignores conference data in the body.
        """
        request = (body.get("conferenceData") or {}).get("createRequest")
        if not enabled or not request:
            return
        existing = event.get("conferenceData") or {}
        if existing.get("createRequest", {}).get("requestId") == request.get("requestId"):
            return  # the same request again is ignored, as Google documents
        code = "-".join("".join(secrets.choice("abcdefghijkmnopqrstuvwxyz") for _ in range(n))
                        for n in (3, 4, 3))
        event["conferenceData"] = {
            "createRequest": {**request, "status": {"statusCode": "success"}},
            "entryPoints": [{"entryPointType": "video", "uri": f"https://meet.google.com/{code}",
                             "label": f"meet.google.com/{code}"}],
            "conferenceSolution": {"key": {"type": "hangoutsMeet"}, "name": "Google Meet"},
            "conferenceId": code,
        }
        event["hangoutLink"] = f"https://meet.google.com/{code}"

    def _next_change(self) -> int:
        self._last_change_number += 1
        return self._last_change_number


def _events_envelope(calendar: Calendar) -> dict[str, Any]:
    return {
        "kind": "calendar#events",
        "etag": f'"p3{calendar.token_generation:02d}{len(calendar.events):014d}"',
        "summary": calendar.calendar_id,
        "description": "",
        "updated": fields.now_text(),
        "timeZone": calendar.time_zone,
        "accessRole": "owner",
        "defaultReminders": [{"method": "popup", "minutes": 10}],
        "items": [],
    }


def _as_listed(event: dict[str, Any], incremental: bool) -> dict[str, Any]:
    """A deleted event in a sync listing carries little more than its id, as with Google.

    A cancelled instance of a series keeps recurringEventId and originalStartTime, the fields
    Google guarantees for it.
    """
    if incremental and event.get("status") == "cancelled":
        kept = ("kind", "etag", "id", "status", "recurringEventId", "originalStartTime")
        return {key: copy.deepcopy(event[key]) for key in kept if key in event}
    return copy.deepcopy(event)
