"""A Calendar user's settings, as the Calendar API v3 emulator serves them (settings.get).

After https://developers.google.com/workspace/calendar/api/v3/reference/settings: a Setting is
{"kind": "calendar#setting", "etag", "id", "value"}, every value a string; the supported ids,
their allowed values and defaults are the table below, the same page's. The user's time zone is
their calendar's; the locale is whatever the person chose (Settings > General > Language), one
of the values the page allows, written with '_' ("en_GB", "es_419", "pt_BR").
https://developers.google.com/workspace/calendar/api/v3/reference/settings/get: GET
/users/me/settings/{setting}, with one of the scopes calendar, calendar.readonly,
calendar.settings.readonly or calendar.settings; an id Google does not know answers 404 notFound.
"""

from __future__ import annotations

import zlib
from typing import Any

_SCOPE = "https://www.googleapis.com/auth/"
READ_SCOPES = frozenset(_SCOPE + s for s in (
    "calendar", "calendar.readonly", "calendar.settings.readonly", "calendar.settings"))

DEFAULT_LOCALE = "en"
# The reference's "Allowed values" for locale.
LOCALES = frozenset((
    "in", "ca", "cs", "da", "de", "en_GB", "en", "es", "es_419", "tl", "fr", "hr", "it", "lv",
    "lt", "hu", "nl", "no", "pl", "pt_BR", "pt_PT", "ro", "sk", "sl", "fi", "sv", "tr", "vi",
    "el", "ru", "sr", "uk", "bg", "iw", "ar", "fa", "hi", "th", "zh_TW", "zh_CN", "ja", "ko"))
# The reference's defaults; locale and timezone are the user's own (see values()).
DEFAULTS = {
    "autoAddHangouts": "false",
    "dateFieldOrder": "MDY",
    "defaultEventLength": "60",
    "format24HourTime": "false",
    "hideInvitations": "false",
    "hideWeekends": "false",
    "locale": DEFAULT_LOCALE,
    "remindOnRespondedEventsOnly": "false",
    "showDeclinedEvents": "true",
    "timezone": "Etc/GMT",
    "useKeyboardShortcuts": "true",
    "weekStart": "0",
}


def checked_locale(locale: str) -> str:
    """locale, if Google Calendar offers it; ValueError (a test's mistake) if not."""
    if locale not in LOCALES:
        raise ValueError(f"Google Calendar has no locale {locale!r}; it has {sorted(LOCALES)}")
    return locale


def values(time_zone: str, locale: str) -> dict[str, str]:
    """Every setting of a user whose calendar is in time_zone and who chose locale."""
    return DEFAULTS | {"timezone": time_zone, "locale": locale}


def resource(setting_id: str, value: str) -> dict[str, Any]:
    """The Setting resource; its ETag changes with its value, as a version tag does."""
    return {"kind": "calendar#setting", "etag": f'"{zlib.crc32(value.encode()) * 1000}"',
            "id": setting_id, "value": value}
