"""Pure helpers on Microsoft Graph event resources, for the Graph emulator.

After https://learn.microsoft.com/en-us/graph/api/resources/event and
https://learn.microsoft.com/en-us/graph/api/resources/datetimetimezone: dateTimeTimeZone values
have no offset and seven fractional digits; responses are in UTC unless the request says
`Prefer: outlook.timezone="<IANA or Windows name>"`; requests may use either kind of name.
Exchange stores HTML bodies as whole documents, so a fragment comes back wrapped in
<html><head><meta …></head><body>…</body></html>.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import tz_win, win_tz

from integrations.sandbox.graph_errors import graph_error

READ_ONLY = {"id", "@odata.etag", "changeKey", "createdDateTime", "lastModifiedDateTime",
             "iCalUId", "isOrganizer", "organizer", "seriesMasterId", "type", "webLink",
             "onlineMeeting", "onlineMeetingUrl", "responseStatus", "bodyPreview",
             "originalStartTimeZone", "originalEndTimeZone", "@odata.context"}
_HTML_DOCUMENT = re.compile(r"<html\b", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]+>")


def zone(name: str) -> ZoneInfo:
    """An IANA or Windows zone name as a ZoneInfo; 400 for an unknown one."""
    try:
        return ZoneInfo(win_tz.get(name, name))
    except (ZoneInfoNotFoundError, ValueError):
        raise graph_error(400, "TimeZoneNotSupportedException",
                          f"A valid TimeZone value must be specified. The following TimeZone "
                          f"value is not supported: '{name}'.") from None


def parse_when(when: Any, name: str) -> tuple[datetime, str]:
    """A dateTimeTimeZone value as an aware UTC datetime and the zone name it was given in."""
    if not isinstance(when, dict) or not when.get("dateTime") or not when.get("timeZone"):
        raise graph_error(400, "ErrorInvalidRequest", f"Your request can't be completed. "
                          f"The {name} property must have a dateTime and a timeZone.")
    try:
        moment = datetime.fromisoformat(str(when["dateTime"])[:26].rstrip("Z"))
    except ValueError:
        raise graph_error(400, "UnableToDeserializePostBody",
                          f"Cannot convert the literal '{when['dateTime']}' to DateTimeOffset."
                          ) from None
    return moment.replace(tzinfo=zone(when["timeZone"])).astimezone(UTC), when["timeZone"]


def format_when(moment: datetime, zone_name: str) -> dict[str, str]:
    """A UTC datetime as Graph writes it in zone_name (UTC unless the client asked otherwise)."""
    local = moment.astimezone(zone(zone_name)).replace(tzinfo=None)
    return {"dateTime": local.isoformat(timespec="microseconds") + "0", "timeZone": zone_name}


def windows_name(zone_name: str) -> str:
    """The Windows name Exchange keeps in originalStartTimeZone."""
    return tz_win.get(zone_name, zone_name)


def stored_body(body: Any) -> dict[str, str]:
    """The body as Exchange keeps it: HTML fragments become whole documents."""
    if not isinstance(body, dict):
        raise graph_error(400, "ErrorInvalidRequest", "The body property must be an itemBody.")
    kind = str(body.get("contentType", "text")).lower()
    content = str(body.get("content", ""))
    if kind == "html" and content and not _HTML_DOCUMENT.search(content):
        content = ('<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; '
                   f'charset=utf-8">\r\n</head>\r\n<body>\r\n{content}\r\n</body>\r\n</html>\r\n')
    return {"contentType": kind, "content": content}


def preview(body: dict[str, str]) -> str:
    text = _TAGS.sub(" ", body["content"]) if body["contentType"] == "html" else body["content"]
    return " ".join(text.split())[:255]


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "0Z")


def new_id() -> str:
    return "AAMkAG" + base64.urlsafe_b64encode(secrets.token_bytes(66)).decode()


def new_change_key() -> str:
    return base64.b64encode(secrets.token_bytes(30)).decode()


def encode_token(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any] | None:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:
        return None
    return decoded if isinstance(decoded, dict) else None
