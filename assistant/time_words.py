"""Times as people read them in a table: 'just now', '3 min ago', '2 days'. Shared by
`assistant status` and the admin page, so both describe the same lag in the same words."""

from __future__ import annotations

from datetime import datetime, timedelta


def ago(moment: datetime | None, now: datetime) -> str:
    """'never', 'just now', '3 min ago', '2 h from now'."""
    if moment is None:
        return "never"
    seconds = (now - moment).total_seconds()
    if abs(seconds) < 60:
        return "just now"
    return f"{span(timedelta(seconds=abs(seconds)))} {'ago' if seconds >= 0 else 'from now'}"


def span(length: timedelta | None) -> str:
    """The largest whole unit: '45 s', '3 min', '2 h', '1 day', '4 days'; '–' for none."""
    if length is None:
        return "–"
    seconds = int(abs(length.total_seconds()))
    for unit, size in (("day", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if unit == 'day' and count != 1 else ''}"
    return f"{seconds} s"
