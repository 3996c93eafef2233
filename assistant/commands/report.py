"""`assistant report`: what the assistant did for a team, as text, HTML with charts, or JSON."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from assistant.checklist import load_checklist
from assistant.commands.common import config_option, load_config_or_default, print_json
from assistant.errors import InputError
from assistant.rendering import Renderer
from assistant.store import Store
from assistant.store.database import StoreUnavailable
from assistant.team_report import (
    DEFINITIONS,
    TeamReport,
    default_since,
    gather,
    hours_words,
    report_json,
)

FORMATS = ("text", "html", "json")


def _teams(_ctx: click.Context, _param: click.Parameter, teams: tuple[str, ...]
           ) -> tuple[str, ...]:
    """Each --team a domain or an address (a usage error otherwise)."""
    for team in teams:
        local, at, domain = team.strip().rpartition("@")
        if " " in team.strip() or "." not in domain or (at and not local):
            raise click.BadParameter(f"{team!r} is neither a domain (sales.example.com) nor a "
                                     "calendar's address (alice@example.com)")
    return tuple(team.strip() for team in teams)


@click.command()
@config_option
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="DATE",
              help="First day (YYYY-MM-DD) of meetings to count (default: the Monday 12 weeks "
                   "back).")
@click.option("--team", "teams", multiple=True, metavar="DOMAIN|CALENDAR", callback=_teams,
              help="Only this organiser domain (subdomains included) or watched calendar; "
                   "repeat for several (default: everyone).")
@click.option("--format", "output_format", type=click.Choice(FORMATS), default=None,
              help="Plain text tables (the default), an HTML page with charts, or JSON.")
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
@click.option("--out", "out_file", type=click.Path(path_type=Path, dir_okay=False),
              metavar="FILE", help="Write the report to FILE instead of printing it.")
def report(config_path: Path | None, since: datetime | None, teams: tuple[str, ...],
           output_format: str, as_json: bool, out_file: Path | None) -> None:
    """Report what the assistant did: formats by week, answers, rows, minutes given back.

    Reads the service's database (service.database_url) and changes nothing in it. Weeks
    are ISO weeks (UTC) of each meeting's start; the report says how every figure is computed.
    """
    _, config = load_config_or_default(config_path)
    now = datetime.now(UTC)
    first_day = since.date() if since else default_since(now)
    checklist = load_checklist(config.checklist)
    store = open_existing(config.service.database_url)
    try:
        with store.reading() as session:
            figures = gather(session, since=first_day, teams=list(teams), now=now,
                             checklist=checklist)
    finally:
        store.close()
    for address in figures.unknown_calendars:
        click.echo(f"warning: no watched calendar is {address}; it adds no meetings", err=True)
    if as_json and output_format not in (None, "json"):
        raise click.UsageError(f"--json and --format {output_format} ask for two formats")
    output_format = "json" if as_json else output_format or "text"
    if output_format == "json" and out_file is None:
        print_json(report_json(figures))
        return
    text = render(figures, output_format)
    if out_file is None:
        click.echo(text)
        return
    try:
        out_file.write_text(text + ("" if text.endswith("\n") else "\n"), encoding="utf-8")
    except OSError as err:
        raise InputError(f"cannot write {out_file}: {err.strerror or err}") from err
    click.echo(f"wrote the report to {out_file}", err=True)


def render(figures: TeamReport, output_format: str, renderer: Renderer | None = None) -> str:
    """The report as text, html or json (the same JSON --format json prints)."""
    if output_format == "json":
        return json.dumps(report_json(figures), indent=2, ensure_ascii=False)
    renderer = renderer or Renderer()
    context = _context(figures)
    if output_format == "html":
        from assistant.report_charts import charts  # matplotlib: only the HTML needs it

        return renderer.render("report.html.j2", {**context, "charts": charts(figures)})
    return renderer.render("report.txt.j2", context)


def open_existing(url: str) -> Store:
    """The store at url if the service has made it; InputError saying why not otherwise.

    Unlike Store.open it neither creates nor migrates anything: a report changes nothing,
    so a database with an older schema is refused (the next `assistant run` upgrades it).
    """
    address = make_url(url)
    where = address.render_as_string(hide_password=True)
    file = address.database if address.get_backend_name() == "sqlite" else None
    if file not in (None, "", ":memory:") and not Path(file).exists():
        raise InputError(f"there is no database at {file} yet: "
                         "`assistant run` makes it when it first starts")
    store = Store(url)
    try:
        tables = set(inspect(store.engine).get_table_names())
    except OperationalError as err:
        store.close()
        raise StoreUnavailable(f"cannot open the database {where}: "
                               f"{str(err.orig or err).strip()}") from err
    if "conversations" not in tables:
        store.close()
        raise InputError(f"the database {where} has no assistant data yet: "
                         "`assistant run` sets it up when it first starts")
    if not store.is_current():
        store.close()
        raise InputError(f"the database {where} has an older schema: `assistant run` (or "
                         "`assistant status`) upgrades it, then the report can read it")
    return store


# -- what the templates are given ----------------------------------------------------------------


def _context(figures: TeamReport) -> dict[str, Any]:
    return {
        "r": figures,
        "teams": ", ".join(figures.teams) or "everyone",
        "generated": figures.generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "definitions": DEFINITIONS,
        "pct": percent,
        "hours": hours_words,
        "day": day,
        "duration": duration,
        "number": number,
        "charts": [],
    }


def percent(part: int, whole: int) -> str:
    """'67%', or '-' when there is nothing to divide."""
    return f"{round(100 * part / whole)}%" if whole else "-"


def number(value: float | None) -> str:
    """'2', '1.5', '2.7'; '-' for no value."""
    return "-" if value is None else f"{value:.1f}".removesuffix(".0")


def duration(minutes: int, short: bool = False) -> str:
    """'20 minutes'; from two hours on '3.5 hours (210 minutes)', or short '4 h'."""
    if minutes < 120:
        return f"{minutes} minute{'' if minutes == 1 else 's'}"
    if short:
        return f"{minutes / 60:,.0f} h"
    return f"{minutes / 60:,.1f} hours ({minutes:,} minutes)"


def day(value: date) -> str:
    return f"{value.day} {value:%b}"

