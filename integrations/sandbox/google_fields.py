"""Pure helpers on Calendar API event resources and list parameters, for the emulator.

Validation and normalisation as Google applies them (see google_store for the documentation
followed): times must have a zone, an end may not precede its start, dateTimes are written in
the event's own zone; patch bodies merge objects and replace arrays; guests get a
responseStatus. Page and sync tokens are opaque base64 JSON.
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from integrations.sandbox import google_recurrence as recurrence
from integrations.sandbox.google_errors import bad_request

READ_ONLY = {"kind", "etag", "id", "htmlLink", "created", "updated", "creator", "organizer",
              "iCalUID", "hangoutLink", "sequence", "recurringEventId", "originalStartTime"}
SERIES_HORIZON = timedelta(days=730)  # how far a series is expanded without a timeMax
DEFAULT_PAGE = 250
MAX_PAGE = 2500


def in_full_listing(event: dict[str, Any], params: dict[str, str], zone: str) -> bool:
    if event.get("status") == "cancelled" and params.get("showDeleted") != "true":
        return False
    start, end = instant(event["start"], zone), instant(event["end"], zone)
    time_min, time_max = params.get("timeMin"), params.get("timeMax")
    if time_max and start >= parse_bound(time_max, "timeMax"):
        return False
    if event.get("recurrence") and time_min:
        # A series is listed when any of its occurrences falls in the window.
        window_end = parse_bound(time_max, "timeMax") if time_max else start + SERIES_HORIZON
        return bool(recurrence.instances(event, [], zone, parse_bound(time_min, "timeMin"),
                                         window_end))
    return not (time_min and end <= parse_bound(time_min, "timeMin"))


def instant(when: dict[str, Any], zone: str) -> datetime:
    if "date" in when:
        day = date.fromisoformat(when["date"])
        return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(when.get("timeZone") or zone))
    return datetime.fromisoformat(when["dateTime"])


def parse_bound(text: str, name: str) -> datetime:
    try:
        bound = datetime.fromisoformat(text)
    except ValueError:
        bound = None
    if bound is None or bound.tzinfo is None:
        raise bad_request("invalid", f"Bad Request: {name} must be an RFC3339 timestamp "
                                     "with offset.")
    return bound


def check_times(event: dict[str, Any], calendar_zone: str) -> None:
    """Validate start/end as Google does and write dateTimes in the event's own zone."""
    for name in ("start", "end"):
        when = event.get(name)
        if not isinstance(when, dict) or not ({"date", "dateTime"} & set(when)):
            raise bad_request("required", f"Missing {name} time.")
        if "dateTime" in when:
            when.pop("date", None)
            try:
                moment = datetime.fromisoformat(when["dateTime"])
            except (TypeError, ValueError):
                raise bad_request("invalid", f"Invalid {name} time.") from None
            zone = when.get("timeZone")
            if moment.tzinfo is None:
                if not zone:
                    raise bad_request("badRequest",
                                      f"Missing time zone definition for {name} time.")
                moment = moment.replace(tzinfo=ZoneInfo(zone))
            when["dateTime"] = moment.astimezone(ZoneInfo(zone or calendar_zone)).isoformat()
    if instant(event["end"], calendar_zone) < instant(event["start"], calendar_zone):
        raise bad_request("timeRangeEmpty", "The specified time range is empty.")


def fill_attendees(event: dict[str, Any]) -> None:
    """Guests get a responseStatus and the organiser's own entry its flags, as Google does."""
    organiser = event.get("organizer", {}).get("email")
    for attendee in event.get("attendees", []):
        if attendee.get("email") == organiser:
            attendee.setdefault("organizer", True)
            attendee.setdefault("self", True)
            attendee.setdefault("responseStatus", "accepted")
        attendee.setdefault("responseStatus", "needsAction")


def writable(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items()
            if key not in READ_ONLY and key != "conferenceData"}


def merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """Google's patch: objects merge key by key, null removes, anything else replaces."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def page_size(text: str | None) -> int:
    if text is None:
        return DEFAULT_PAGE
    try:
        size = int(text)
    except ValueError:
        raise bad_request("invalid", "Invalid value for maxResults.") from None
    if size < 1:
        raise bad_request("invalid", "Invalid value for maxResults.")
    return min(size, MAX_PAGE)


def query_key(params: dict[str, str]) -> str:
    ignored = {"pageToken", "maxResults", "alt", "prettyPrint", "fields"}
    return json.dumps(sorted((k, v) for k, v in params.items() if k not in ignored))


def encode(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def decode(token: str, name: str) -> dict[str, Any]:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:
        raise bad_request("invalid", f"Invalid {name} value.") from None
    if not isinstance(decoded, dict):
        raise bad_request("invalid", f"Invalid {name} value.")
    return decoded


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

