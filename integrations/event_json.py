"""Careful reading of provider JSON: every value checked for type before the core sees it.

Providers send what their documentation says almost always; this is for the rest, so that one
odd event becomes an UnreadableEvent naming the field instead of a crash in the sync loop.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, tzinfo
from typing import Any

from assistant.errors import UnreadableEvent

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def mapping(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """parent[key] as an object; a missing or null field reads as an empty one."""
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UnreadableEvent(f"{key!r} should be an object, got {type(value).__name__}")
    return value


def items(parent: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """parent[key] as a list of objects; entries that are not objects are an error."""
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise UnreadableEvent(f"{key!r} should be a list of objects")
    return value


def text(parent: Mapping[str, Any], key: str) -> str:
    """parent[key] as a string that any store can keep: without NUL characters, which no
    PostgreSQL text holds, and with a lone surrogate (JSON can escape one, UTF-8 cannot encode
    it) as U+FFFD. Neither can be typed into a calendar: only a broken or hostile client
    sends them, and they must not stop a whole batch of calendars from being stored."""
    value = parent.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UnreadableEvent(f"{key!r} should be a string, got {type(value).__name__}")
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = _LONE_SURROGATE.sub("\ufffd", value)
    return value


def flag(parent: Mapping[str, Any], key: str) -> bool:
    value = parent.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise UnreadableEvent(f"{key!r} should be true or false, got {value!r}")
    return value


def required_text(parent: Mapping[str, Any], key: str) -> str:
    value = text(parent, key)
    if not value:
        raise UnreadableEvent(f"the event has no {key!r}")
    return value


def timestamp(value: str, field: str, zone: tzinfo | None = None) -> datetime:
    """An ISO 8601 date-time; one without an offset is read in zone (an error if zone is None)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as err:
        raise UnreadableEvent(f"{field}: {value!r} is not a date-time") from err
    if parsed.tzinfo is None:
        if zone is None:
            raise UnreadableEvent(f"{field}: {value!r} has no time zone")
        parsed = parsed.replace(tzinfo=zone)
    return parsed


def calendar_date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as err:
        raise UnreadableEvent(f"{field}: {value!r} is not a date") from err
