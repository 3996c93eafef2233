"""`assistant remembered list | forget`: what organisers told the assistant about customers.

An organiser's answer to a row that describes the customer (what it values, where it is, its
competitors, who holds the power) is reused for that customer's next meetings for
`policy.remember_answers_days`. When a customer's situation changes, forget it: the next
meeting asks again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from rich.table import Table

from assistant.answer_memory import forget, remembered
from assistant.checklist import load_checklist
from assistant.commands.calendars import open_store
from assistant.commands.common import (
    config_option,
    json_option,
    load_config_or_default,
    print_json,
)
from assistant.commands.tables import console
from assistant.errors import InputError
from assistant.models import Side


@click.group("remembered")
def remembered_answers() -> None:
    """List and forget organisers' answers remembered about customers."""


@remembered_answers.command("list")
@click.option("--domain", help="Only this customer domain.")
@config_option
@json_option
def list_remembered(domain: str | None, config_path: Path | None, as_json: bool) -> None:
    """Every answer remembered about a customer, and until when it is used."""
    _, config = load_config_or_default(config_path)
    checklist = load_checklist(config.checklist)
    keep = timedelta(days=config.policy.remember_answers_days)
    keys = {row.key for row in checklist}
    with open_store(config, reconciled=False) as store, store.reading() as session:
        rows = [{"domain": row.domain, "row": checklist.row(row.row_key).number,
                 "key": row.row_key, "answer": row.side,
                 "wording": checklist.row(row.row_key).wording(Side(row.side)),
                 "organiser": row.organiser, "answered_at": row.answered_at,
                 "used_until": row.answered_at + keep}
                for row in remembered(session, domain) if row.row_key in keys]
    if as_json:
        print_json([{**row, "answered_at": row["answered_at"].isoformat(),
                     "used_until": row["used_until"].isoformat()} for row in rows])
        return
    if not rows:
        click.echo("Nothing is remembered" + (f" of {domain}." if domain else " yet: "
                   "organisers' answers about a customer (rows 5, 6, 8, 10) appear here."))
        return
    table = Table(title="Remembered about customers")
    for column in ("Customer", "Row", "Answer", "By", "Answered", "Used until"):
        table.add_column(column)
    now = datetime.now(UTC)
    for row in rows:
        until = row["used_until"]
        table.add_row(row["domain"], f"{row['row']} {row['key']}",
                      f"{row['answer']}: {row['wording']}", row["organiser"],
                      f"{row['answered_at']:%Y-%m-%d}",
                      f"{until:%Y-%m-%d}" + (" (expired)" if until <= now else ""))
    console().print(table)


@remembered_answers.command("forget")
@click.argument("domain")
@click.option("--row", "row_name", metavar="ROW", help="Only this row (number or key).")
@config_option
@json_option
def forget_remembered(domain: str, row_name: str | None, config_path: Path | None,
                      as_json: bool) -> None:
    """Forget what organisers said of a customer, so that its next meeting asks again."""
    _, config = load_config_or_default(config_path)
    key = load_checklist(config.checklist).find(row_name).key if row_name else None
    if "." not in domain or "@" in domain:
        raise InputError(f"{domain!r} is not a customer domain, such as acme.com")
    with open_store(config, reconciled=False) as store, store.transaction() as session:
        forgotten = forget(session, domain, key, actor="cli", now=datetime.now(UTC))
    if as_json:
        print_json({"domain": domain.lower(), "row": key, "forgotten": forgotten})
    else:
        click.echo(f"Forgot {forgotten} answer{'' if forgotten == 1 else 's'} about "
                   f"{domain.lower()}." if forgotten else f"Nothing was remembered about "
                   f"{domain.lower()}{' for that row' if key else ''}.")
