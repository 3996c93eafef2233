"""`assistant remembered list | forget`: what organisers told the assistant about customers.

An organiser's answer to a row that describes the customer (what it values, where it is, its
competitors, who holds the power) is reused for that customer's next meetings for
`policy.remember_answers_days`. When a customer's situation changes, forget it: the next
meeting asks again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
from rich.table import Table

from assistant.answer_memory import customer_domain, forget, remembered
from assistant.checklist import load_checklist
from assistant.commands.calendars import open_store
from assistant.commands.common import (
    config_option,
    json_option,
    load_config_or_default,
    print_json,
)
from assistant.commands.tables import console


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
    with open_store(config, reconciled=False) as store, store.reading() as session:
        answers = remembered(session, checklist, config.policy.remember_answers_days, domain)
    if as_json:
        print_json([{"domain": a.domain, "row": a.row.number, "key": a.row.key,
                     "answer": a.side.value, "wording": a.wording, "organiser": a.organiser,
                     "answered_at": a.answered_at.isoformat(),
                     "used_until": a.used_until.isoformat()} for a in answers])
        return
    if not answers:
        click.echo("Nothing is remembered" + (f" of {domain}." if domain else " yet: "
                   "organisers' answers about a customer (rows 5, 6, 8, 10) appear here."))
        return
    table = Table(title="Remembered about customers")
    for column in ("Customer", "Row", "Answer", "By", "Answered", "Used until"):
        table.add_column(column)
    now = datetime.now(UTC)
    for a in answers:
        table.add_row(a.domain, f"{a.row.number} {a.row.key}", f"{a.side.value}: {a.wording}",
                      a.organiser, f"{a.answered_at:%Y-%m-%d}",
                      f"{a.used_until:%Y-%m-%d}" + (" (expired)" if a.used_until <= now else ""))
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
    domain = customer_domain(domain)
    with open_store(config, reconciled=False) as store, store.transaction() as session:
        forgotten = forget(session, domain, key, actor="cli", now=datetime.now(UTC))
    if as_json:
        print_json({"domain": domain, "row": key, "forgotten": forgotten})
    else:
        click.echo(f"Forgot {forgotten} answer{'' if forgotten == 1 else 's'} about {domain}."
                   if forgotten else
                   f"Nothing was remembered about {domain}{' for that row' if key else ''}.")
