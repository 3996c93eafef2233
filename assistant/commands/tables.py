"""How the admin commands show things: rich tables, times in words, the same rows as JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from assistant.calendar_admin import PROVIDER_NAMES, CalendarHealth
from assistant.time_words import ago, span

_STATE_STYLES = {"watching": "green", "first sync": "cyan", "failing": "red",
                 "paused": "yellow", "removed": "dim"}


def console() -> Console:
    # Wide enough for addresses when piped (rich would wrap at 80 columns otherwise).
    return Console(width=None if Console().is_terminal else 140, highlight=False)


def calendar_table(rows: list[CalendarHealth], now: datetime, *, title: str) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for name, justify in (("Provider", "left"), ("Calendar", "left"), ("State", "left"),
                          ("Last sync", "right"), ("Lag", "right"), ("In flight", "right"),
                          ("Added by", "left"), ("Last error", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for row in rows:
        table.add_row(
            PROVIDER_NAMES[row.provider], row.address,
            Text(row.state, style=_STATE_STYLES.get(row.state, "")),
            ago(row.last_synced_at, now), span(row.lag),
            str(row.in_flight), row.source,
            Text(row.last_error or "", style="red"))
    return table


def health_json(row: CalendarHealth) -> dict[str, Any]:
    return {"id": row.id, "provider": row.provider.value, "address": row.address,
            "state": row.state, "source": row.source,
            "last_synced_at": row.last_synced_at.isoformat() if row.last_synced_at else None,
            "lag_seconds": round(row.lag.total_seconds()) if row.lag is not None else None,
            "in_flight": row.in_flight, "last_error": row.last_error}
