"""Expanding a recurring event into its instances, for events.list with singleEvents=true.

As Google documents it (https://developers.google.com/calendar/api/v3/reference/events/list and
https://developers.google.com/calendar/api/guides/recurringevents): an instance's id is the
series id, '_' and its original start in UTC (basic ISO format; the date alone for all-day
series); it carries recurringEventId and originalStartTime; a modified or cancelled instance is
stored as its own event (an exception) with the same id, and replaces the generated one.
Times repeat on the wall clock of the series' own zone, so a 10:00 meeting stays at 10:00
across a DST change. RRULE/EXDATE parsing is python-dateutil's.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

MAX_INSTANCES = 730  # two years of a daily series; Google, too, stops expanding at some point


def instances(
    master: dict[str, Any], exceptions: Iterable[dict[str, Any]], calendar_zone: str,
    window_start: datetime, window_end: datetime,
) -> list[dict[str, Any]]:
    """The series' instances overlapping [window_start, window_end), exceptions applied.

    Cancelled exceptions are included, as Google includes them when asked for deleted events;
    callers filter them like any cancelled event.
    """
    zone = ZoneInfo(master["start"].get("timeZone") or calendar_zone)
    all_day = "date" in master["start"]
    first = _start_of(master["start"], zone)
    length = _start_of(master["end"], zone) - first
    replaced = {exception["id"]: exception for exception in exceptions}
    found = []
    rule = rrulestr("\n".join(master.get("recurrence", [])), dtstart=first, forceset=True)
    for count, start in enumerate(rule):
        if count >= MAX_INSTANCES or start >= window_end:
            break
        if start + length <= window_start:
            continue
        instance_id = f"{master['id']}_{_id_suffix(start, all_day)}"
        if instance_id in replaced:
            found.append(copy.deepcopy(replaced[instance_id]))
        else:
            found.append(_instance(master, instance_id, start, length, all_day))
    return found


def _instance(
    master: dict[str, Any], instance_id: str, start: datetime, length: timedelta, all_day: bool
) -> dict[str, Any]:
    instance = {key: copy.deepcopy(value) for key, value in master.items()
                if key not in ("recurrence", "id", "start", "end")}
    instance["id"] = instance_id
    instance["recurringEventId"] = master["id"]
    zone_name = master["start"].get("timeZone")
    instance["start"] = _when(start, all_day, zone_name)
    instance["end"] = _when(start + length, all_day, zone_name)
    instance["originalStartTime"] = dict(instance["start"])
    return instance


def _start_of(when: dict[str, Any], zone: ZoneInfo) -> datetime:
    if "date" in when:
        day = date.fromisoformat(when["date"])
        return datetime(day.year, day.month, day.day, tzinfo=zone)
    return datetime.fromisoformat(when["dateTime"]).astimezone(zone)


def _when(moment: datetime, all_day: bool, zone_name: str | None) -> dict[str, Any]:
    when: dict[str, Any] = (
        {"date": moment.date().isoformat()} if all_day else {"dateTime": moment.isoformat()}
    )
    if zone_name:
        when["timeZone"] = zone_name
    return when


def _id_suffix(start: datetime, all_day: bool) -> str:
    if all_day:
        return start.strftime("%Y%m%d")
    return start.astimezone(ZoneInfo("UTC")).strftime("%Y%m%dT%H%M%SZ")
