"""Event resources saved as JSON files, for the CLI: which provider wrote them, and reading them.

A file holds one event as the Google Calendar or Microsoft Graph API returns it, or (for
history) several: a bare JSON list, a Google `events.list` page ({"items": [...]}) or a Graph
collection page ({"value": [...]}).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from assistant.errors import InputError, UnreadableEvent
from assistant.models import EventRemoved, Meeting
from integrations.google_event import read_google_event
from integrations.graph_event import read_graph_event

_GOOGLE_KEYS = {"kind", "summary", "htmlLink", "hangoutLink", "recurringEventId", "iCalUID",
                "conferenceData", "creator", "guestsCanModify", "eventType"}
_GRAPH_KEYS = {"@odata.etag", "@odata.context", "@odata.type", "@removed", "subject",
               "bodyPreview", "isAllDay", "isOrganizer", "seriesMasterId", "webLink", "iCalUId",
               "isOnlineMeeting"}


def read_event(resource: Any) -> Meeting | EventRemoved:
    """Read one event resource, telling Google from Microsoft by the fields each API uses."""
    if not isinstance(resource, Mapping):
        raise UnreadableEvent("an event must be a JSON object")
    if resource.get("kind") == "calendar#event":
        return read_google_event(resource)
    google = len(_GOOGLE_KEYS & resource.keys())
    graph = len(_GRAPH_KEYS & resource.keys())
    if google == graph:
        raise UnreadableEvent(
            "cannot tell whether this is a Google Calendar or a Microsoft Graph event; "
            "save the event exactly as the API returned it"
        )
    return read_google_event(resource) if google > graph else read_graph_event(resource)


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path} is not valid JSON: {err}") from err


def load_meeting(path: Path) -> Meeting:
    try:
        event = read_event(load_json(path))
    except UnreadableEvent as err:
        raise InputError(f"{path}: {err}") from err
    if isinstance(event, EventRemoved):
        raise InputError(f"{path} describes a deleted event ({event.event_id}): nothing to do")
    return event


def load_history(path: Path) -> list[Meeting]:
    """The meetings in a history file; deleted entries are skipped, broken ones are errors."""
    data = load_json(path)
    if isinstance(data, Mapping):
        data = data.get("items", data.get("value", [data] if "id" in data else None))
    if not isinstance(data, list):
        raise InputError(
            f"{path}: history must be a JSON list of events, a page with 'items' or 'value', "
            "or one event"
        )
    meetings = []
    for index, resource in enumerate(data):
        try:
            event = read_event(resource)
        except UnreadableEvent as err:
            raise InputError(f"{path}: event [{index}]: {err}") from err
        if isinstance(event, Meeting):
            meetings.append(event)
    return meetings
