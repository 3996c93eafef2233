"""`assistant calendars list | add | remove | pause | resume`: which calendars are watched.

Kept in the service's database, beside the calendars the config lists; who wins when both
speak is assistant.calendar_admin's rule, and each command says so when it applies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click

from assistant.calendar_admin import (
    PROVIDER_NAMES,
    CalendarAdmin,
    CalendarChange,
    health,
    provider_named,
    read_csv,
    reconcile,
)
from assistant.commands.common import (
    config_option,
    json_option,
    load_config_or_default,
    print_json,
)
from assistant.commands.tables import calendar_table, console, health_json
from assistant.config import Config
from assistant.errors import InputError
from assistant.models import Provider
from assistant.ports import CalendarPort
from assistant.store import Store


def _provider(ctx: click.Context, param: click.Parameter, value: str | None) -> Provider | None:
    try:
        return provider_named(value) if value else None
    except InputError as err:
        raise click.BadParameter(str(err)) from None


_PROVIDER = click.option(
    "--provider", "provider", metavar="google|microsoft", callback=_provider,
    help="Which provider the addresses are on. Without it, known addresses are matched on "
         "any provider, and new ones go to the only provider the config signs in to.")
_CSV = click.option(
    "--csv", "csv_file", type=click.File("r", encoding="utf-8-sig"), metavar="FILE|-",
    help="Addresses from a CSV file (an address or email column, provider optional).")


@click.group()
def calendars() -> None:
    """Choose the calendars the assistant watches (kept in its database).

    The config's google.calendars and microsoft.calendars are added on every start; a
    calendar paused or removed here stays so even while the config lists it.
    """


@calendars.command("list")
@config_option
@click.option("--all", "show_all", is_flag=True, help="Removed calendars too.")
@json_option
def list_calendars(config_path: Path | None, show_all: bool, as_json: bool) -> None:
    """Every watched (and paused) calendar, with its state and last sync."""
    _, config = load_config_or_default(config_path)
    now = datetime.now(UTC)
    with open_store(config, reconciled=False) as store, store.reading() as session:
        rows = [row for row in health(session, now) if show_all or row.state != "removed"]
    if as_json:
        print_json([health_json(row) for row in rows])
        return
    if not rows:
        click.echo("No calendars yet: `assistant calendars add ADDRESS --provider google` or "
                   "list them in the config.")
        return
    console().print(calendar_table(rows, now, title="Calendars"))


def _changing(verb: str, help_text: str,
              action: Callable[[CalendarAdmin], Callable[..., list[CalendarChange]]]
              ) -> click.Command:
    @click.argument("addresses", nargs=-1)
    @_PROVIDER
    @_CSV
    @config_option
    @json_option
    def command(addresses: tuple[str, ...], provider: Provider | None, csv_file,
                config_path: Path | None, as_json: bool) -> None:
        _, config = load_config_or_default(config_path)
        wanted: list[str | tuple[Provider | None, str]] = list(addresses)
        if csv_file is not None:
            where = "stdin" if csv_file.name == "<stdin>" else csv_file.name
            wanted.extend(read_csv(csv_file.read(), where))
        if not wanted:
            raise click.UsageError("name at least one address, or --csv FILE")
        with open_store(config) as store, _ports(config) as ports:
            admin = CalendarAdmin(store, config, clock=lambda: datetime.now(UTC), ports=ports)
            changes = action(admin)(provider, wanted)
        _report(changes, as_json)

    command.__doc__ = help_text
    return calendars.command(verb)(command)


_changing("add", "Watch these calendars (by email address; several at once, or --csv).",
          lambda admin: admin.add)
_changing("remove", "Stop watching these calendars: their push channels stop and their "
          "open conversations are withdrawn; their history stays.", lambda admin: admin.remove)
_changing("pause", "Stop syncing these calendars for now; their pending emails and invite "
          "writes wait until they are resumed.", lambda admin: admin.pause)
_changing("resume", "Watch paused calendars again, from where they stopped.",
          lambda admin: admin.resume)


def _report(changes: list[CalendarChange], as_json: bool) -> None:
    if as_json:
        print_json([{"provider": c.provider.value if c.provider else None, "address": c.address,
                     "changed": c.changed, "outcome": c.outcome} for c in changes])
        return
    for change in changes:
        name = f" ({PROVIDER_NAMES[change.provider]})" if change.provider else ""
        click.echo(f"{change.address}{name}: {change.outcome}")


@contextmanager
def open_store(config: Config, *, reconciled: bool = True) -> Iterator[Store]:
    """The service's database, brought up to date; reconciled: in line with the config's
    calendars, as a worker's start would (commands that only read leave that to the worker)."""
    store = Store.open(config.service.database_url)
    try:
        if reconciled:
            with store.transaction() as session:
                reconcile(session, config, datetime.now(UTC))
        yield store
    finally:
        store.close()


@contextmanager
def _ports(config: Config) -> Iterator[Callable[[], Mapping[Provider, CalendarPort]]]:
    """The signed-in adapters, made only if a push channel has to be stopped."""
    from assistant.wiring import opened_calendar_ports

    with ExitStack() as stack:
        made: dict[Provider, CalendarPort] = {}

        def ports() -> Mapping[Provider, CalendarPort]:
            if not made:
                made.update(stack.enter_context(opened_calendar_ports(config)))
            return made

        yield ports
