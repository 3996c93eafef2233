"""Read a Microsoft Graph v1.0 event resource into the core's Meeting.

Follows https://learn.microsoft.com/en-us/graph/api/resources/event:
- start/end are dateTimeTimeZone values: a `dateTime` without offset (often with seven
  fractional digits) and a `timeZone` that is "UTC", an IANA name, or a Windows name such as
  "W. Europe Standard Time" when the request asked for it with `Prefer: outlook.timezone`
  (https://learn.microsoft.com/en-us/graph/api/resources/datetimetimezone);
- `isAllDay` events start and end at midnight; `isCancelled` marks a cancelled meeting;
- attendees have `type` (required, optional, resource), `status.response` (none, organizer,
  tentativelyAccepted, accepted, declined, notResponded) and `emailAddress`;
- `body` has `contentType` "html" or "text"; Outlook bodies are whole HTML documents;
- the join link is `onlineMeeting.joinUrl` (`onlineMeetingUrl` is its deprecated forerunner);
- `seriesMasterId` links an occurrence or exception to its series (`type` seriesMaster);
- a delta query reports deleted events as `{"id": ..., "@removed": {"reason": "deleted"}}`
  (https://learn.microsoft.com/en-us/graph/delta-query-events).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import win_tz

from assistant.annotate import AnnotationPlan
from assistant.edits import mark_from_properties, mark_to_properties
from assistant.errors import UnreadableEvent
from assistant.models import (
    AssistantMark,
    Attendee,
    EventRemoved,
    Format,
    Meeting,
    Person,
    Provider,
    Response,
)
from integrations.event_json import (
    flag,
    items,
    mapping,
    required_text,
    text,
    timestamp,
)

_RESPONSES = {
    "accepted": Response.ACCEPTED,
    "organizer": Response.ACCEPTED,
    "tentativelyAccepted": Response.TENTATIVE,
    "declined": Response.DECLINED,
}
# The assistant's mark, one string property in a property set of its own (a fixed GUID), read
# with $expand=singleValueExtendedProperties($filter=id eq '<MARK_PROPERTY>').
MARK_PROPERTY = "String {6f1c2a57-3b8e-4d1a-9c47-2e5b8d0a7f13} Name MeetingFormatMark"
_ADDRESS_TYPES = {"streetAddress", "businessAddress", "homeAddress", "hotel", "restaurant"}
_ADDRESS_PARTS = ("street", "city", "postalCode", "state", "countryOrRegion")


def read_graph_event(resource: Mapping[str, Any]) -> Meeting | EventRemoved:
    """The meeting an event resource describes, or EventRemoved for a delta's removed entry.

    Raises UnreadableEvent when the resource lacks an id or usable start and end.
    """
    if not isinstance(resource, Mapping):
        raise UnreadableEvent("a Microsoft Graph event must be a JSON object")
    event_id = required_text(resource, "id")
    series_id = text(resource, "seriesMasterId")
    if "@removed" in resource:
        return EventRemoved(Provider.MICROSOFT, event_id, series_id)
    if text(resource, "type") == "seriesMaster":
        series_id = series_id or event_id
    all_day = flag(resource, "isAllDay")
    start, zone_name = _read_time(mapping(resource, "start"), "start")
    end, _ = _read_time(mapping(resource, "end"), "end")
    body = mapping(resource, "body")
    location, has_address = _location(mapping(resource, "location"))
    return Meeting(
        provider=Provider.MICROSOFT,
        event_id=event_id,
        title=text(resource, "subject"),
        organizer=_person(mapping(mapping(resource, "organizer"), "emailAddress")),
        attendees=tuple(_attendee(item) for item in items(resource, "attendees")),
        start=start.date() if all_day else start,
        end=end.date() if all_day else end,
        time_zone=_organiser_zone(resource, zone_name),
        location=location,
        has_physical_address=has_address,
        description=text(body, "content"),
        description_is_html=text(body, "contentType").lower() == "html",
        video_link=_video_link(resource),
        cancelled=flag(resource, "isCancelled"),
        series_id=series_id,
        etag=text(resource, "@odata.etag"),
        organizer_is_owner=flag(resource, "isOrganizer"),
        mark=_mark(resource),
    )


def patch_for(
    resource: Mapping[str, Any], plan: AnnotationPlan, categories: Mapping[Format, str] | None
) -> dict[str, Any]:
    """The PATCH body that makes resource read as planned; {} when it already does.

    Only what changes is sent: the body keeps its content type; the end is sent in UTC (Graph
    keeps the event's own zone in originalEndTimeZone); a Teams meeting is asked for with
    isOnlineMeeting; the mark travels as one single-value extended property; our category for
    the format replaces our other one and leaves the organiser's own categories alone.
    """
    body: dict[str, Any] = {}
    current = mapping(resource, "body")
    if plan.description != text(current, "content"):
        body["body"] = {"contentType": text(current, "contentType") or "text",
                        "content": plan.description}
    if plan.end is not None:
        moment = plan.end.astimezone(UTC).replace(tzinfo=None)
        body["end"] = {"dateTime": moment.isoformat(timespec="seconds"), "timeZone": "UTC"}
    if plan.add_video_link:
        body["isOnlineMeeting"] = True
        body["onlineMeetingProvider"] = "teamsForBusiness"
    mark = json.dumps(mark_to_properties(plan.mark), sort_keys=True)
    if _mark_value(resource) != mark:
        body["singleValueExtendedProperties"] = [{"id": MARK_PROPERTY, "value": mark}]
    if categories:
        present = [c for c in resource.get("categories") or [] if isinstance(c, str)]
        wanted = [c for c in present if c not in categories.values()]
        wanted.append(categories[plan.mark.format])
        if sorted(wanted) != sorted(present):
            body["categories"] = wanted
    return body


def _mark(resource: Mapping[str, Any]) -> AssistantMark | None:
    value = _mark_value(resource)
    if not value:
        return None
    try:
        properties = json.loads(value)
    except ValueError:
        return None
    return mark_from_properties(properties) if isinstance(properties, dict) else None


def _mark_value(resource: Mapping[str, Any]) -> str:
    for item in items(resource, "singleValueExtendedProperties"):
        if text(item, "id").lower() == MARK_PROPERTY.lower():
            return text(item, "value")
    return ""


def _read_time(when: Mapping[str, Any], field: str) -> tuple[datetime, str]:
    zone_name = text(when, "timeZone") or "UTC"
    value = text(when, "dateTime")
    if not value:
        raise UnreadableEvent(f"{field} has no 'dateTime'")
    moment = timestamp(value, f"{field}.dateTime", _zone(zone_name))
    return moment, zone_name


def _organiser_zone(resource: Mapping[str, Any], zone_name: str) -> str:
    """The zone the meeting was made in: Graph answers in UTC unless asked otherwise, but keeps
    the organiser's own zone in originalStartTimeZone, which reads better in an email."""
    original = text(resource, "originalStartTimeZone")
    if zone_name.upper() not in ("UTC", "") or not original:
        return zone_name
    try:
        _zone(original)
    except UnreadableEvent:
        return zone_name  # e.g. "tzone://Microsoft/Custom": keep what the times are in
    return original


def _zone(name: str) -> tzinfo:
    """An IANA zone for a Graph time zone name, which may be IANA or Windows."""
    iana = win_tz.get(name, name)
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise UnreadableEvent(f"unknown time zone {name!r}") from err


def _person(email_address: Mapping[str, Any]) -> Person:
    return Person(email=text(email_address, "address"), name=text(email_address, "name"))


def _attendee(data: Mapping[str, Any]) -> Attendee:
    kind = text(data, "type")
    return Attendee(
        person=_person(mapping(data, "emailAddress")),
        response=_RESPONSES.get(text(mapping(data, "status"), "response"), Response.NEEDS_ACTION),
        optional=kind == "optional",
        is_resource=kind == "resource",
    )


def _location(data: Mapping[str, Any]) -> tuple[str, bool]:
    """The location as one line, and whether Graph says it is a postal address."""
    address = mapping(data, "address")
    parts = [text(address, part) for part in _ADDRESS_PARTS if text(address, part)]
    name = text(data, "displayName")
    has_address = bool(parts) or text(data, "locationType") in _ADDRESS_TYPES
    if parts and name and name not in ", ".join(parts):
        return f"{name}, {', '.join(parts)}", has_address
    return (", ".join(parts) if parts else name), has_address


def _video_link(resource: Mapping[str, Any]) -> str:
    return text(mapping(resource, "onlineMeeting"), "joinUrl") or text(
        resource, "onlineMeetingUrl"
    )
