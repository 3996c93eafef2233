"""The Graph emulator's state: mailboxes, their events, changes, and calendarView delta.

Behaviour follows Microsoft Graph v1.0:
- event resource and PATCH (given properties replace the stored ones; single-value extended
  properties are upserted by id): https://learn.microsoft.com/en-us/graph/api/event-update,
  https://learn.microsoft.com/en-us/graph/api/singlevaluelegacyextendedproperty-post-singlevalueextendedproperties
- If-Match on @odata.etag (W/"changeKey"); a stale one answers 412 ErrorIrresolvableConflict.
- calendarView delta: a window's events (single events, series masters, exceptions, and a
  stub for each plain occurrence: id, type, seriesMasterId, start, end),
  pages ending in @odata.nextLink ($skiptoken), the last in @odata.deltaLink ($deltatoken);
  a later round returns what changed in that window, deleted items as
  {"id", "@removed": {"reason": "deleted"}}; the tokens carry the window, so later requests
  need not repeat it; an expired token answers 410 SyncStateNotFound, "The sync state
  generation is not found" (not in the docs; as reported in
  https://github.com/microsoftgraph/microsoft-graph-docs/issues/2350):
  https://learn.microsoft.com/en-us/graph/delta-query-events,
  https://learn.microsoft.com/en-us/graph/api/event-delta
- a meeting appears in each invited mailbox as that mailbox's own item (its own id, the same
  iCalUId, isOrganizer false) and follows the organiser's changes.
Recurrence patterns daily, weekly and absoluteMonthly are expanded (python-dateutil); others
are refused with a 400 rather than silently mis-expanded.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dateutil.rrule import rrulestr

from integrations.sandbox import graph_fields as fields
from integrations.sandbox.graph_errors import graph_error, not_found

DEFAULT_PAGE = 10  # Graph's documented default page size for event delta
MAX_PAGE = 1000
_OCCURRENCE = "=OCC"  # base64url ids never contain '=' before their end: a safe separator
_DAYS = {"sunday": "SU", "monday": "MO", "tuesday": "TU", "wednesday": "WE", "thursday": "TH",
         "friday": "FR", "saturday": "SA"}


@dataclass
class Mailbox:
    address: str
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> stored event
    changed_at: dict[str, int] = field(default_factory=dict)  # instance id -> change number
    removed: dict[str, int] = field(default_factory=dict)  # instance id -> change number
    token_generation: int = 0
    properties: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> ext. props
    locale: str = "en-US"  # mailboxSettings.language.locale, as the user set it in Outlook


class GraphStore:
    def __init__(self) -> None:
        self.mailboxes: dict[str, Mailbox] = {}
        self.on_change: Callable[[str, str, str], None] = lambda mailbox, event_id, kind: None
        self.lock = threading.RLock()
        self._change = 0

    def add_mailbox(self, address: str, locale: str = "en-US") -> Mailbox:
        with self.lock:
            return self.mailboxes.setdefault(address.lower(),
                                             Mailbox(address.lower(), locale=locale))

    def mailbox(self, address: str) -> Mailbox:
        found = self.mailboxes.get(address.lower())
        if found is None:
            raise graph_error(404, "ErrorInvalidUser",
                              f"The requested user '{address}' is invalid.")
        return found

    # -- single events -----------------------------------------------------------------------

    def get(self, address: str, event_id: str, zone_name: str = "UTC") -> dict[str, Any]:
        with self.lock:
            box = self.mailbox(address)
            return self._rendered(box, self._stored_or_occurrence(box, event_id), zone_name)

    def create(self, address: str, body: dict[str, Any], zone_name: str = "UTC") -> dict[str, Any]:
        with self.lock:
            box = self.mailbox(address)
            now = fields.now_text()
            event: dict[str, Any] = {
                "id": fields.new_id(), "createdDateTime": now,
                "iCalUId": "040000008200E00074C5B7101A82E008" + fields.new_change_key()[:32],
                "isOrganizer": True, "isCancelled": False, "categories": [],
                "organizer": {"emailAddress": {"address": box.address,
                                               "name": box.address.split("@")[0].title()}},
                "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
                "type": "seriesMaster" if body.get("recurrence") else "singleInstance",
                "body": {"contentType": "text", "content": ""}, "attendees": [],
                "isOnlineMeeting": False, "onlineMeetingProvider": "unknown", "subject": "",
                "location": {"displayName": "", "locationType": "default"},
            }
            self._apply(box, event, body)
            self._save(box, event)
            return self._rendered(box, event, zone_name)

    def patch(self, address: str, event_id: str, body: dict[str, Any], *,
              if_match: str | None, zone_name: str = "UTC") -> dict[str, Any]:
        with self.lock:
            box = self.mailbox(address)
            current = self._stored_or_occurrence(box, event_id)
            if if_match not in (None, "*", current["@odata.etag"]):
                raise graph_error(412, "ErrorIrresolvableConflict",
                                  "The send or update operation could not be performed because "
                                  "the change key passed in the request does not match the "
                                  "current change key for the item.")
            event = copy.deepcopy(current)
            if event.get("type") == "occurrence":
                event["type"] = "exception"  # a changed occurrence is stored on its own
            self._apply(box, event, body)
            self._save(box, event)
            return self._rendered(box, event, zone_name)

    def delete(self, address: str, event_id: str) -> None:
        with self.lock:
            box = self.mailbox(address)
            event = self._stored_or_occurrence(box, event_id)
            if event.get("type") == "occurrence":
                box.events[event_id] = {**event, "isCancelled": True, "type": "exception"}
            else:
                box.events.pop(event_id)
            self._changed(box, event_id, "deleted")
            if event.get("type") == "seriesMaster":
                for instance_id in [i for i, e in box.events.items()
                                    if e.get("seriesMasterId") == event_id]:
                    box.events.pop(instance_id)
            self._update_guests(box, event, deleted=True)

    def expire_delta_tokens(self, address: str | None = None) -> None:
        with self.lock:
            for box in self.mailboxes.values():
                if address is None or box.address == address.lower():
                    box.token_generation += 1

    # -- calendarView delta ------------------------------------------------------------------

    def delta_page(self, address: str, params: dict[str, str], page_size: int,
                   zone_name: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None, dict]:
        """One page: (items, next page state or None, delta state for the deltaLink)."""
        with self.lock:
            box = self.mailbox(address)
            state = self._delta_state(box, params)
            window = (datetime.fromisoformat(state["start"]), datetime.fromisoformat(state["end"]))
            after = state.get("after", "")
            since, snapshot = state.get("since"), state["snapshot"]
            entries = self._window_entries(box, window, since, snapshot)
            remaining = [entry for entry in entries if entry[0] > after]
            page = remaining[:page_size]
            items = [self._listed(box, event, zone_name) if event is not None else
                     {"@odata.type": "#microsoft.graph.event", "id": instance_id,
                      "@removed": {"reason": "deleted"}}
                     for instance_id, event in page]
            more = {**state, "after": page[-1][0]} if len(remaining) > page_size else None
            final = {"start": state["start"], "end": state["end"], "since": snapshot,
                     "gen": box.token_generation}
            return items, more, final

    def _delta_state(self, box: Mailbox, params: dict[str, str]) -> dict[str, Any]:
        for name in ("$skiptoken", "$deltatoken"):
            if name in params:
                state = fields.decode_token(params[name])
                if state is None or state.get("gen") != box.token_generation:
                    raise graph_error(410, "SyncStateNotFound",
                                      "The sync state generation is not found.")
                if name == "$deltatoken":
                    state = {**state, "snapshot": self._change}
                return state
        try:
            start = datetime.fromisoformat(params["startDateTime"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(params["endDateTime"].replace("Z", "+00:00"))
        except (KeyError, ValueError):
            raise graph_error(400, "ErrorInvalidParameter", "This request requires a time "
                              "window specified by the query string parameters StartDateTime "
                              "and EndDateTime.") from None
        start = start if start.tzinfo else start.replace(tzinfo=UTC)
        end = end if end.tzinfo else end.replace(tzinfo=UTC)
        return {"start": start.isoformat(), "end": end.isoformat(), "since": None,
                "snapshot": self._change, "gen": box.token_generation}

    def _window_entries(self, box: Mailbox, window: tuple[datetime, datetime],
                        since: int | None, snapshot: int) -> list[tuple[str, Any]]:
        """(id, event or None when removed), sorted by id for stable paging.

        A series is listed as its master plus a stub per occurrence in the window, as Graph
        does; an event that changed and now lies outside the window counts as removed.
        """
        entries: dict[str, Any] = {}
        for event in list(box.events.values()):
            if event["type"] == "occurrence":
                continue  # only stored for a moment while it becomes an exception
            listed = [event]
            if event["type"] == "seriesMaster":
                occurrences = [o for o in self._occurrences(box, event, window)
                               if o["type"] == "occurrence"]
                listed = [event, *(_stub(o) for o in occurrences)] if occurrences else []
            for item in listed:
                last = max(box.changed_at.get(item["id"], 0),
                           box.changed_at.get(item.get("seriesMasterId") or "", 0))
                if last > snapshot or (since is not None and last <= since):
                    continue
                inside = item["type"] == "seriesMaster" or _overlaps(item, window)
                cancelled = item.get("type") == "exception" and item.get("isCancelled")
                if inside and not cancelled:
                    entries[item["id"]] = item
                elif since is not None:
                    entries[item["id"]] = None
        if since is not None:
            for event_id, number in box.removed.items():
                if since < number <= snapshot and event_id not in entries:
                    entries[event_id] = None
        return sorted(entries.items())

    def _occurrences(self, box: Mailbox, master: dict[str, Any],
                     window: tuple[datetime, datetime]) -> list[dict[str, Any]]:
        start, end = master["_start"], master["_end"]
        rule = rrulestr(_rrule(master["recurrence"], start), dtstart=start.astimezone(
            fields.zone(master["_zone"])))
        found = []
        for count, moment in enumerate(rule):
            if moment >= window[1] or count > 730:
                break
            occurrence_id = f"{master['id']}{_OCCURRENCE}{moment.astimezone(UTC):%Y%m%dT%H%M%S}"
            stored = box.events.get(occurrence_id)
            found.append(stored or self._occurrence(master, occurrence_id, moment,
                                                    moment + (end - start)))
        return found

    def _occurrence(self, master: dict[str, Any], occurrence_id: str, start: datetime,
                    end: datetime) -> dict[str, Any]:
        occurrence = {k: copy.deepcopy(v) for k, v in master.items() if k != "recurrence"}
        occurrence.update({"id": occurrence_id, "type": "occurrence",
                           "seriesMasterId": master["id"], "recurrence": None,
                           "_start": start.astimezone(UTC), "_end": end.astimezone(UTC)})
        return occurrence

    def _stored_or_occurrence(self, box: Mailbox, event_id: str) -> dict[str, Any]:
        event = box.events.get(event_id)
        if event is not None:
            return event
        master_id, separator, stamp = event_id.partition(_OCCURRENCE)
        master = box.events.get(master_id) if separator else None
        if master is None or master.get("type") != "seriesMaster":
            raise not_found()
        start = datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        length = master["_end"] - master["_start"]
        return self._occurrence(master, event_id, start, start + length)

    # -- writing helpers ---------------------------------------------------------------------

    def _apply(self, box: Mailbox, event: dict[str, Any], body: dict[str, Any]) -> None:
        for key, value in body.items():
            if key == "singleValueExtendedProperties":
                stored = box.properties.setdefault(event["id"], {})
                stored.update({item["id"]: item.get("value") for item in value or []})
            elif key == "body":
                event["body"] = fields.stored_body(value)
            elif key in ("start", "end"):
                event[f"_{key}"], zone_name = fields.parse_when(value, key)
                event["_zone"] = zone_name if key == "start" else event.get("_zone", zone_name)
            elif key not in fields.READ_ONLY:
                event[key] = copy.deepcopy(value)
        for attendee in event.get("attendees") or []:
            attendee.setdefault("type", "required")
            attendee.setdefault("status", {"response": "none", "time": "0001-01-01T00:00:00Z"})
        if "_start" not in event or "_end" not in event:
            raise graph_error(400, "ErrorInvalidRequest", "An event needs a start and an end.")
        if event["_end"] < event["_start"]:
            raise graph_error(400, "ErrorInvalidRequest",
                              "The end of the event must be after its start.")
        if event.get("recurrence"):
            _rrule(event["recurrence"], event["_start"])  # refuse what cannot be expanded
        if event.get("isOnlineMeeting") and not event.get("onlineMeeting"):
            meeting = fields.new_change_key()[:24].replace("/", "x").replace("+", "y")
            event["onlineMeetingProvider"] = event.get("onlineMeetingProvider", "teamsForBusiness")
            event["onlineMeeting"] = {"joinUrl": "https://teams.microsoft.com/l/meetup-join/"
                                      f"19%3ameeting_{meeting}%40thread.v2/0"}

    def _save(self, box: Mailbox, event: dict[str, Any]) -> None:
        change_key = fields.new_change_key()
        event["changeKey"] = change_key
        event["@odata.etag"] = f'W/"{change_key}"'
        event["lastModifiedDateTime"] = fields.now_text()
        kind = "updated" if event["id"] in box.events else "created"
        box.events[event["id"]] = event
        self._changed(box, event["id"], kind)
        if event.get("isOrganizer"):
            self._update_guests(box, event)

    def _changed(self, box: Mailbox, event_id: str, kind: str) -> None:
        """Record a change; kind is "created", "updated" or "deleted", as notifications say."""
        self._change += 1
        (box.removed if kind == "deleted" else box.changed_at)[event_id] = self._change
        self.on_change(box.address, event_id, kind)

    def _update_guests(self, organiser: Mailbox, event: dict[str, Any],
                       deleted: bool = False) -> None:
        """Each invited mailbox keeps its own copy of the organiser's meeting."""
        for attendee in event.get("attendees", []):
            guest = self.mailboxes.get(attendee.get("emailAddress", {}).get("address", "").lower())
            if guest is None or guest is organiser:
                continue
            copy_id = next((i for i, e in guest.events.items()
                            if e.get("iCalUId") == event["iCalUId"]), None)
            if deleted:
                if copy_id is not None:
                    guest.events[copy_id]["isCancelled"] = True
                    self._save_copy(guest, guest.events[copy_id])
                continue
            guest_copy = copy.deepcopy(event)
            guest_copy.update({"id": copy_id or fields.new_id(), "isOrganizer": False,
                               "responseStatus": {"response": "notResponded",
                                                  "time": "0001-01-01T00:00:00Z"}})
            self._save_copy(guest, guest_copy)

    def _save_copy(self, guest: Mailbox, event: dict[str, Any]) -> None:
        change_key = fields.new_change_key()
        event.update({"changeKey": change_key, "@odata.etag": f'W/"{change_key}"'})
        kind = "updated" if event["id"] in guest.events else "created"
        guest.events[event["id"]] = event
        self._changed(guest, event["id"], kind)

    def _listed(self, box: Mailbox, event: dict[str, Any], zone_name: str) -> dict[str, Any]:
        if not event.get("_stub"):
            return self._rendered(box, event, zone_name)
        return {"@odata.type": "#microsoft.graph.event", "@odata.etag": event["@odata.etag"],
                "id": event["id"], "seriesMasterId": event["seriesMasterId"],
                "type": "occurrence", "start": fields.format_when(event["_start"], zone_name),
                "end": fields.format_when(event["_end"], zone_name)}

    def _rendered(self, box: Mailbox, event: dict[str, Any], zone_name: str) -> dict[str, Any]:
        """The event as Graph returns it, times in the zone the client asked for."""
        shown = {k: copy.deepcopy(v) for k, v in event.items() if not k.startswith("_")}
        shown["start"] = fields.format_when(event["_start"], zone_name)
        shown["end"] = fields.format_when(event["_end"], zone_name)
        shown["originalStartTimeZone"] = fields.windows_name(event["_zone"])
        shown["originalEndTimeZone"] = fields.windows_name(event["_zone"])
        shown["bodyPreview"] = fields.preview(event["body"])
        shown["webLink"] = f"https://outlook.office365.com/owa/?itemid={event['id']}&exvsurl=1"
        shown.setdefault("seriesMasterId", None)
        shown.setdefault("recurrence", None)
        properties = box.properties.get(event["id"])
        if properties:
            shown["_properties"] = properties  # the server decides whether $expand shows them
        return shown


def _stub(occurrence: dict[str, Any]) -> dict[str, Any]:
    """What delta lists for a plain occurrence: little more than its id and times (observed in
    https://github.com/microsoftgraph/microsoft-graph-docs-contrib/issues/34)."""
    return {**occurrence, "_stub": True}


def _overlaps(event: dict[str, Any], window: tuple[datetime, datetime]) -> bool:
    return event["_start"] < window[1] and event["_end"] > window[0]


def _rrule(recurrence: dict[str, Any], start: datetime) -> str:
    """Graph's patternedRecurrence as an RRULE line; 400 for patterns we do not emulate."""
    pattern, span = recurrence.get("pattern") or {}, recurrence.get("range") or {}
    kind = pattern.get("type")
    parts = [f"INTERVAL={int(pattern.get('interval', 1))}"]
    if kind == "daily":
        parts.insert(0, "FREQ=DAILY")
    elif kind == "weekly":
        days = [_DAYS[d.lower()] for d in pattern.get("daysOfWeek", []) if d.lower() in _DAYS]
        days = days or [_DAYS[start.strftime("%A").lower()]]
        parts[:0] = ["FREQ=WEEKLY", f"BYDAY={','.join(days)}"]
    elif kind == "absoluteMonthly":
        parts[:0] = ["FREQ=MONTHLY", f"BYMONTHDAY={int(pattern.get('dayOfMonth', start.day))}"]
    else:
        raise graph_error(400, "ErrorInvalidRequest",
                          f"The emulator does not expand {kind!r} recurrences.")
    if span.get("type") == "numbered":
        parts.append(f"COUNT={int(span['numberOfOccurrences'])}")
    elif span.get("type") == "endDate":
        parts.append(f"UNTIL={span['endDate'].replace('-', '')}T235959Z")
    return "RRULE:" + ";".join(parts)

