"""The `assistant` command. Admins script it, so its commands, options and JSON are a contract.

Built on click (mature, composable, and what typer itself is built on). Errors the user can
fix (a bad file, an unknown row) print one clear message and exit 1; usage errors exit 2.
"""

from __future__ import annotations

import logging
import sys
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from assistant import presenting
from assistant.answer_memory import AnswerMemory
from assistant.answers import AnswerDocument, parse_answer_text
from assistant.assess import Assessor, EarlierAnswers
from assistant.bench.command import bench
from assistant.checklist import Checklist, load_checklist
from assistant.commands.auth import auth
from assistant.commands.calendars import calendars, open_store
from assistant.commands.common import config_path_or_default, print_json
from assistant.commands.remembered import remembered_answers
from assistant.commands.report import report
from assistant.commands.status import status
from assistant.config import Config, config_for_domains, load_config
from assistant.errors import AssistantError, ConfigError, InputError
from assistant.event_files import load_history, load_meeting
from assistant.models import HardFacts
from assistant.redaction import SecretsFilter
from assistant.rendering import Renderer
from assistant.replies import read_reply
from assistant.reply_mail import read_reply_email
from assistant.scoring import recommend as score
from assistant.store import Store
from assistant.store.database import STARTUP_PATIENCE_SECONDS


class _UserError(click.ClickException):
    """Something the user can fix: shown as one line, exit status 1."""

    exit_code = 1

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class _AssistantGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AssistantError as err:
            raise _UserError(str(err)) from err


@click.group(cls=_AssistantGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="meeting-format-assistant")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug) to stderr.")
def cli(verbose: int) -> None:
    """Recommend in person or virtual for customer meetings, and annotate the invites."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(SecretsFilter())
    # Alembic narrates every start's migration check at INFO: only -vv wants that.
    logging.getLogger("alembic").setLevel(max(level, logging.DEBUG if verbose > 1 else
                                              logging.WARNING))


@cli.command()
@click.option(
    "--answers", "answers_file", type=click.File("r"), default=None, metavar="FILE|-",
    help='JSON answers, or - for stdin: {"answers": {"importance": "A", "7": "B"}, '
    '"on_site_equipment": false, "travel_policy": null, "organiser_choice": null}',
)
@click.option("--checklist", "checklist_path", type=click.Path(path_type=Path, dir_okay=False),
              help="A checklist of your own instead of the shipped one.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def recommend(answers_file, checklist_path: Path | None, as_json: bool) -> None:
    """Score checklist answers: in person or virtual, and why.

    Rows are named by number (1-12) or key (importance, rapport, ...), answers are A/B or
    in_person/virtual. Rows left out are unknown and count for neither side.
    """
    checklist = load_checklist(checklist_path)
    document = _read_answers(answers_file, checklist)
    result = score(checklist, document.answers, document.hard)
    if as_json:
        print_json(presenting.recommendation_json(result, phrases_too=False))
    else:
        click.echo(presenting.recommendation_text(result, checklist))


@cli.command()
@click.argument("event_file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--calendar", "calendar_address", metavar="ADDRESS",
              help="Read the event from this watched calendar instead of a file (needs --event).")
@click.option("--event", "event_id", metavar="ID", help="The event's id in that calendar.")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Config file (organisation domains, policy, customers).")
@click.option("--org-domain", "org_domains", multiple=True, metavar="DOMAIN",
              help="Your organisation's domain; repeat for several. Overrides the config's.")
@click.option("--answers", "answers_file", type=click.File("r"), default=None, metavar="FILE|-",
              help="The organiser's answers as JSON (see `assistant recommend --help`).")
@click.option("--history", "history_path", type=click.Path(path_type=Path, dir_okay=False),
              help="The organiser's other events as JSON: a list, or an API list page.")
@click.option("--now", "now_text", metavar="ISO-TIME",
              help="Pretend it is this time (default: now), e.g. 2026-12-01T09:00:00+00:00.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def preview(event_file: Path | None, calendar_address: str | None, event_id: str | None,
            config_path, org_domains, answers_file, history_path, now_text,
            as_json: bool) -> None:
    """Show what the assistant would ask and write for one event, changing nothing.

    EVENT_FILE is a Google Calendar or Microsoft Graph event resource saved as JSON, exactly
    as the API returns it; which one is told from its fields. Or name a real event of a
    watched calendar with --calendar and --event: it is read from the provider now, with the
    organiser's meetings the service has stored as history, as the service would read it.
    """
    now = _parse_now(now_text)
    history = load_history(history_path) if history_path else None
    if (event_file is None) == (calendar_address is None):
        raise click.UsageError("give EVENT_FILE, or --calendar ADDRESS with --event ID")
    if calendar_address is not None and not event_id:
        raise click.UsageError("--calendar needs --event ID")
    with ExitStack() as stack:
        earlier: EarlierAnswers | None = None
        if calendar_address is not None:
            config = load_config(config_path_or_default(config_path))
            store = stack.enter_context(open_store(config, reconciled=False))
            meeting, stored = _watched_event(config, store, calendar_address, event_id, now)
            history = stored if history is None else history
            # As the service would: with what organisers told before.
            earlier = AnswerMemory.of_session(stack.enter_context(store.reading()), now,
                                              config.policy.remember_answers_days)
        else:
            assert event_file is not None
            meeting = load_meeting(event_file)
            config = _preview_config(config_path, list(org_domains), meeting.organizer.domain)
        checklist = load_checklist(config.checklist)
        document = _read_answers(answers_file, checklist)
        assessment = Assessor(config, checklist, Renderer()).assess(
            meeting, now=now, history=history, organiser_answers=document.answers,
            organiser_facts=document.hard, earlier=earlier)
    if as_json:
        print_json(presenting.assessment_json(assessment))
    else:
        click.echo(presenting.assessment_text(assessment, checklist))


def _watched_event(config: Config, store: Store, address: str, event_id: str | None,
                   now: datetime):
    from assistant.event_lookup import read_watched_event

    return read_watched_event(config, store, address, event_id or "", now)


@cli.command("check-config")
@click.argument("config_file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def check_config(config_file: Path | None, as_json: bool) -> None:
    """Validate a config file and the checklist it uses.

    Without CONFIG_FILE, reads $ASSISTANT_CONFIG or ./assistant.toml. Exits 1 and names
    every problem (file, key, what is allowed) when the file is invalid.
    """
    path = config_path_or_default(config_file)
    try:
        config = load_config(path)
        checklist = load_checklist(config.checklist)
    except ConfigError as err:
        if as_json:
            print_json({"ok": False, "file": err.path, "problems": err.problems})
            sys.exit(1)
        raise
    if as_json:
        print_json(presenting.config_json(path, config, checklist))
    else:
        click.echo(presenting.config_text(path, config, checklist))


@cli.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Config file (default: $ASSISTANT_CONFIG, then ./assistant.toml).")
@click.option("--once", is_flag=True,
              help="One full cycle (sync, replies, follow-ups, delivery), then exit: for cron.")
def run(config_path: Path | None, once: bool) -> None:
    """Run the service: watch the calendars, ask, read replies, annotate invites.

    Runs until SIGTERM or Ctrl-C, then finishes the current step and gives its work back.
    Several workers may share one PostgreSQL database (service.database_url); with SQLite,
    run one. A PostgreSQL server that is not up yet is waited for, up to a minute.
    """
    from assistant.scheduler import Worker
    from assistant.wiring import build_service

    path = config_path_or_default(config_path)
    config = load_config(path)
    try:
        built = build_service(config, database_patience_seconds=STARTUP_PATIENCE_SECONDS)
    except ConfigError as err:
        if Path(err.path).exists():
            raise
        # Named by its key (mail.smtp, ...): say which file it is missing from.
        raise ConfigError(str(path), [f"{err.path}: {problem}" for problem in err.problems]
                          ) from err
    if config.policy.dry_run:
        click.echo("dry run (policy.dry_run): no invite is written and no email is sent; "
                   "each is shown here and kept in the audit log", err=True)
        # What a dry run is for: shown whatever the -v level.
        dry_log = logging.getLogger("assistant.dry_run")
        dry_log.setLevel(min(dry_log.getEffectiveLevel(), logging.INFO))
    try:
        if once:
            click.echo(built.service.cycle(), err=True)
        else:
            Worker(built, config).run(announce=lambda text: click.echo(text, err=True))
    finally:
        built.close()


@cli.command()
@click.option("--out", "folder", type=click.Path(path_type=Path, file_okay=False),
              default=Path("assistant-demo"), show_default=True,
              help="Where the demo keeps its database, config and HTML report.")
@click.option("--serve", is_flag=True,
              help="Afterwards keep the web endpoints and the emulators up, until Ctrl-C.")
@click.option("--listen", metavar="HOST:PORT", default="127.0.0.1:8080", show_default=True,
              help="Where --serve's web app (admin page, webhooks) listens.")
def demo(folder: Path, serve: bool, listen: str) -> None:
    """Watch the whole flow against local sandboxes: no accounts, nothing to configure.

    Two sandbox calendars (Google and Outlook) get a week of meetings; the real service
    recognises the customer meetings, emails the organisers, reads their replies and
    annotates the invites. Everything shown is read back from the sandboxes.
    """
    from assistant.demo import run_demo

    run_demo(folder, click.echo, serve=serve, listen=listen)


def _read_answers(answers_file, checklist: Checklist) -> AnswerDocument:
    if answers_file is None:
        return AnswerDocument(answers={}, hard=HardFacts())
    where = "stdin" if answers_file.name == "<stdin>" else answers_file.name
    return parse_answer_text(answers_file.read(), checklist, where=where)


@cli.command("parse-reply")
@click.argument("message_file", type=click.File("rb"), metavar="FILE.eml|-")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Your config: the assistant's address and your checklist.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def parse_reply(message_file, config_path: Path | None, as_json: bool) -> None:
    """Read a reply email the way the assistant does: who, which question, what it says.

    Nothing is checked against open questions or sent: this only shows the reading.
    """
    config = load_config(config_path) if config_path else None
    checklist = load_checklist(config.checklist if config else None)
    mail = config.mail if config else None
    reply = read_reply_email(message_file.read(), mail.sender if mail else None,
                             mail.dmarc_authserv_id if mail else None)
    reading = read_reply(reply, checklist)
    if as_json:
        print_json(presenting.reply_json(reply, reading, checklist))
    else:
        click.echo(presenting.reply_text(reply, reading, checklist))


def _preview_config(path: Path | None, org_domains: list[str], organiser_domain: str) -> Config:
    if path is not None:
        config = load_config(path)
        if org_domains:
            organisation = config.organisation.model_copy(update={"domains": org_domains})
            config = config.model_copy(update={"organisation": organisation})
        return config
    if not org_domains:
        if not organiser_domain:
            raise InputError("the event has no organiser address; pass --org-domain")
        click.echo(
            f"note: assuming your organisation is {organiser_domain}, the organiser's domain "
            "(pass --org-domain or --config to say otherwise)",
            err=True,
        )
        org_domains = [organiser_domain]
    try:
        return config_for_domains(org_domains)
    except ValueError as err:
        raise InputError(f"--org-domain: {err}") from err


def _parse_now(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as err:
        raise InputError(f"--now: {text!r} is not an ISO 8601 time") from err
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


cli.add_command(auth)
cli.add_command(calendars)
cli.add_command(remembered_answers)
cli.add_command(report)
cli.add_command(status)
cli.add_command(bench)


def main() -> None:
    """The console script's entry point."""
    cli(prog_name="assistant")
