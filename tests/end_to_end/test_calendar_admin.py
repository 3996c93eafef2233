"""Admins choose the calendars: pause, resume, remove, add back, the config's say, and a dry run."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from assistant.calendar_admin import CalendarAdmin, read_csv, reconcile
from assistant.cli import cli
from assistant.commands import status as status_module
from assistant.config import Config
from assistant.errors import InputError
from assistant.models import Provider
from assistant.store import Store
from assistant.store.tables import AuditEntry, Conversation, Outbox, PushChannel, WatchedCalendar
from integrations.sandbox.environment import to_toml
from tests.end_to_end.conftest import (
    ALICE,
    BOB,
    Running,
    book_google,
    book_outlook,
    soon,
    store_session,
)


def admin_of(running: Running, config: Config | None = None) -> CalendarAdmin:
    return CalendarAdmin(running.service.store, config or running.config,
                         clock=running.service.clock,
                         ports=lambda: running.service.outside.calendars)


def calendar_row(database_url: str, address: str) -> tuple[bool, str | None, str | None]:
    with store_session(database_url) as session:
        row = session.scalars(select(WatchedCalendar).where(
            WatchedCalendar.address == address)).one()
        return row.paused, row.removed_by, row.cursor


def test_a_paused_calendar_is_not_synced_and_its_emails_wait_until_it_is_resumed(
        running, sandbox, database_url):
    book_google(sandbox, "Pitch to Northwind")
    running.service.reconcile_calendars()
    running.service.sync(every_calendar=True)  # the question is queued, not yet delivered
    [change] = admin_of(running).pause(None, [ALICE])
    assert change.changed and "paused" in change.outcome and "wins over the config" in \
        change.outcome

    assert running.service.deliver() == 0
    book_google(sandbox, "Kick-off with Globex", guests=("ann@globex.example",))
    running.service.cycle()
    assert sandbox.mail.messages == []  # held, and the new meeting not even seen
    with store_session(database_url) as session:
        assert session.scalar(select(Outbox.state)) == "pending"
        assert len(session.scalars(select(Conversation)).all()) == 1

    [change] = admin_of(running).resume(Provider.GOOGLE, [ALICE])
    assert change.outcome.startswith("resumed")
    running.service.cycle()
    assert len(sandbox.mail.wait_for(2)) == 2  # the held question and the new meeting's


def test_removing_a_calendar_stops_its_channel_withdraws_its_questions_and_adding_it_back_asks_anew(
        sandbox, database_url):
    running = Running(sandbox, database_url, service={"public_url": "http://127.0.0.1:9/hooks"})
    try:
        book_google(sandbox, "Pitch to Northwind")
        running.service.reconcile_calendars()
        running.service.push.keep_open()
        assert [c["calendar"] for c in sandbox.google.channels.values()] == [ALICE]
        running.service.sync(every_calendar=True)

        [change] = admin_of(running).remove(None, [ALICE])
        assert "1 open conversation(s) withdrawn" in change.outcome
        assert sandbox.google.channels == {}
        with store_session(database_url) as session:
            assert session.scalars(select(PushChannel)).all() == []
            assert session.scalar(select(Outbox.state)) == "cancelled"
            assert session.scalar(select(Conversation.state)) == "skipped"
            actions = session.scalars(select(AuditEntry.action)).all()
            assert {"withdrawn", "calendar_removed"} <= set(actions)
        running.service.cycle()
        running.service.push.keep_open()
        assert sandbox.mail.messages == [] and sandbox.google.channels == {}
        assert calendar_row(database_url, ALICE)[1] == "cli"

        [change] = admin_of(running).add(None, [ALICE])
        assert change.outcome.startswith("added back")
        running.service.cycle()
        [question] = sandbox.mail.wait_for(1)
        assert question["To"] == ALICE
    finally:
        running.close()


def test_the_config_adds_and_drops_its_own_calendars_but_an_admins_removal_wins(
        running, sandbox, database_url):
    service = running.service
    service.reconcile_calendars()
    admin_of(running).remove(None, [ALICE])
    service.reconcile_calendars()  # the config still lists Alice: the admin's removal stands
    assert calendar_row(database_url, ALICE)[1] == "cli"

    without_bob = running.config.model_copy(update={
        "microsoft": running.config.microsoft.model_copy(update={"calendars": []})})
    service.config = without_bob
    service.reconcile_calendars()
    assert calendar_row(database_url, BOB)[1] == "config"
    service.config = running.config
    service.reconcile_calendars()  # listed again: watched again, from a full sync
    assert calendar_row(database_url, BOB) == (False, None, None)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # not about the store
def test_adding_checks_every_address_before_adding_any(running, sandbox, database_url):
    admin = admin_of(running)
    running.service.reconcile_calendars()
    for wanted, words in ((["carol@example.com", "eve@elsewhere.example"], "outside"),
                          (["not-an-address"], "not an email address")):
        with pytest.raises(InputError, match=words):
            admin.add(Provider.GOOGLE, wanted)
    with store_session(database_url) as session:
        assert "carol@example.com" not in session.scalars(select(WatchedCalendar.address)).all()
    # Both providers are signed in, so a new address needs its provider named.
    with pytest.raises(InputError, match="--provider"):
        admin.add(None, ["carol@example.com"])
    [known] = admin.add(None, [BOB])  # known already: its provider is taken from the store
    assert known.outcome == "already watched" and not known.changed


def test_csv_files_name_addresses_with_or_without_a_header():
    assert read_csv("email,provider\ncarol@example.com,outlook\n\ndan@example.com,\n", "f") == [
        (Provider.MICROSOFT, "carol@example.com"), (None, "dan@example.com")]
    assert read_csv("carol@example.com,google\n", "f") == [(Provider.GOOGLE,
                                                            "carol@example.com")]
    with pytest.raises(InputError, match="^team.csv: row 3 has no address$"):
        read_csv("address,provider\ncarol@example.com,google\n,google\n", "team.csv")


def config_file(sandbox, tmp_path, database_url, **sections):
    path = tmp_path / "assistant.toml"
    path.write_text(to_toml(sandbox.config(database_url, **sections)))
    return path


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # not about the store
def test_the_calendars_and_status_commands(sandbox, tmp_path, database_url):
    sandbox.google.add_user("carol@example.com")
    path = config_file(sandbox, tmp_path, database_url)
    csv = tmp_path / "team.csv"
    csv.write_text("address,provider\ncarol@example.com,google\nghost@example.com,google\n")
    runner = CliRunner()

    added = runner.invoke(cli, ["calendars", "add", "--csv", str(csv), "--config", str(path)])
    assert added.exit_code == 0, added.output
    assert added.output == ("carol@example.com (Google): added; its first sync is due now\n"
                            "ghost@example.com (Google): added; its first sync is due now\n")
    listed = json.loads(runner.invoke(cli, ["calendars", "list", "--json", "--config",
                                            str(path)]).output)
    assert {(c["address"], c["state"], c["source"]) for c in listed} == {
        (ALICE, "first sync", "config"), (BOB, "first sync", "config"),
        ("carol@example.com", "first sync", "cli"), ("ghost@example.com", "first sync", "cli")}

    paused = runner.invoke(cli, ["calendars", "pause", BOB, "--config", str(path)])
    assert "paused" in paused.output
    ran = runner.invoke(cli, ["run", "--once", "--config", str(path)])
    assert ran.exit_code == 0, ran.output
    status = json.loads(runner.invoke(cli, ["status", "--json", "--config", str(path)]).output)
    states = {c["address"]: c["state"] for c in status["calendars"]}
    assert states == {ALICE: "watching", BOB: "paused", "carol@example.com": "watching",
                      "ghost@example.com": "failing"}  # no such calendar at Google
    [ghost] = [c for c in status["calendars"] if c["address"] == "ghost@example.com"]
    assert "404" in ghost["last_error"]
    assert status["outbox"] == {"emails_waiting": 0, "invite_writes_waiting": 0, "failed": 0}

    table = runner.invoke(cli, ["status", "--no-wait", "--config", str(path)])
    assert table.exit_code == 0
    assert "carol@example.com" in table.output and "paused" in table.output
    assert "Outbox: 0 email(s)" in table.output


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # not about the store
def test_status_waits_for_the_first_sync_with_a_progress_bar(sandbox, tmp_path, database_url,
                                                              monkeypatch):
    path = config_file(sandbox, tmp_path, database_url)
    running = Running(sandbox, database_url)
    polls: list[object] = []
    counted = status_module._synced_counts
    worker = threading.Thread(target=running.service.cycle)

    def first_poll_starts_the_sync(session):
        if not polls:  # the bar is up: now the worker syncs
            worker.start()
        polls.append(counted(session))
        return polls[-1]

    monkeypatch.setattr(status_module, "_synced_counts", first_poll_starts_the_sync)
    monkeypatch.setattr(status_module, "POLL_SECONDS", 0.1)
    try:
        running.service.reconcile_calendars()
        result = CliRunner().invoke(cli, ["status", "--wait", "--config", str(path)])
        worker.join()
    finally:
        running.close()
    assert result.exit_code == 0, result.output
    assert polls[0] is not None and polls[-1] is None  # waited, then saw it done
    assert "First sync under way" not in result.output
    assert result.output.count("watching") == 2


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # not about the store
def test_status_stops_waiting_when_nothing_syncs_and_says_why(sandbox, tmp_path, database_url,
                                                             monkeypatch):
    path = config_file(sandbox, tmp_path, database_url, service={"sync_interval_seconds": 1})
    monkeypatch.setattr(status_module, "POLL_SECONDS", 0.1)
    monkeypatch.setattr(status_module, "STALL_MARGIN", 0)
    CliRunner().invoke(cli, ["calendars", "list", "--config", str(path)])  # makes the store
    running = Running(sandbox, database_url)
    try:
        running.service.reconcile_calendars()  # and no worker syncs them
    finally:
        running.close()
    result = CliRunner().invoke(cli, ["status", "--wait", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "is a worker running (`assistant run`)?" in result.output
    assert "First sync under way: 0 of 2 calendars done." in result.output


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # not about the store
def test_a_dry_run_decides_and_logs_but_writes_no_invite_and_sends_no_email(
        sandbox, database_url, caplog):
    running = Running(sandbox, database_url, policy={"dry_run": True})
    try:
        event = book_google(sandbox, "Pitch to Northwind")
        book_outlook(sandbox, "Weekly status with Northwind")
        with caplog.at_level("INFO", logger="assistant.dry_run"):
            running.service.cycle()
            later = running.service.clock() + timedelta(days=2, hours=12)
            running.service.clock = lambda: later  # past the deadline: decided without answers
            running.service.cycle()
        assert sandbox.mail.messages == []
        assert sandbox.google.event(ALICE, event["id"])["etag"] == event["etag"]
        with store_session(database_url) as session:
            states = set(session.scalars(select(Conversation.state)).all())
            audit = session.scalars(select(AuditEntry.detail)).all()
            effects = set(session.scalars(select(Outbox.state)).all())
        assert states == {"annotated"}
        assert effects == {"dry_run"}  # kept apart from what was really done
        assert sum("dry run: the question email" in line for line in audit) == 2
        assert any("dry run: nothing written" in line for line in audit)
        logged = [r.getMessage() for r in caplog.records]
        assert any(line.startswith("dry run: would send") for line in logged)
        assert any(line.startswith("dry run: would write to 'Pitch to Northwind'")
                   and "in person; the invite now says which format and why" in line
                   for line in logged), logged
    finally:
        running.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # not about the store
def test_preview_reads_a_real_event_of_a_watched_calendar_and_changes_nothing(
        sandbox, tmp_path, database_url):
    path = config_file(sandbox, tmp_path, database_url)
    event = book_outlook(sandbox, "Northwind onboarding")
    unknown = CliRunner().invoke(cli, ["preview", "--calendar", "nobody@example.com", "--event",
                                       "x", "--config", str(path)])
    assert unknown.exit_code == 1 and "not a watched calendar" in unknown.output
    result = CliRunner().invoke(cli, ["preview", "--calendar", BOB, "--event", event["id"],
                                      "--config", str(path), "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["customer_meeting"] and shown["customer_domains"] == ["northwind.example"]
    assert "importance" in shown["inferred"]  # "onboarding" is a moment of truth
    missing = CliRunner().invoke(cli, ["preview", "--calendar", BOB, "--event", "no-such-id",
                                       "--config", str(path)])
    assert missing.exit_code == 1 and "has no event 'no-such-id'" in missing.output
    assert sandbox.graph.event(BOB, event["id"])["changeKey"] == event["changeKey"]
    assert sandbox.mail.messages == []


# -- what the review found ------------------------------------------------------------------------


def test_a_calendar_the_config_dropped_and_an_admin_added_back_stays_watched(
        running, sandbox, database_url):
    service = running.service
    service.reconcile_calendars()
    service.config = running.config.model_copy(update={
        "google": running.config.google.model_copy(update={"calendars": []})})
    service.reconcile_calendars()
    assert calendar_row(database_url, ALICE)[1] == "config"
    admin_of(running, service.config).add(Provider.GOOGLE, [ALICE])
    service.reconcile_calendars()  # the config still does not list Alice: the admin's add wins
    assert calendar_row(database_url, ALICE)[:2] == (False, None)


def test_a_digest_waits_while_its_calendar_is_paused_and_goes_after_resume(
        sandbox, database_url):
    running = Running(sandbox, database_url, mail={"daily_question_cap": 1})
    try:
        for n in range(3):
            book_google(sandbox, f"Pitch {n} to Northwind", start=soon(days=3 + n))
        running.service.reconcile_calendars()
        running.service.sync(every_calendar=True)  # beyond the cap: one digest, queued
        admin_of(running).pause(None, [ALICE])
        running.service.deliver()
        assert sandbox.mail.messages == []
        admin_of(running).resume(None, [ALICE])
        running.service.deliver()
        [digest] = sandbox.mail.wait_for(1)
        assert digest["Subject"] == "3 customer meetings: in person or virtual?"
    finally:
        running.close()


def test_a_digest_about_a_meeting_cancelled_meanwhile_is_withdrawn_and_the_rest_asked_again(
        sandbox, database_url):
    running = Running(sandbox, database_url, mail={"daily_question_cap": 1})
    try:
        events = [book_google(sandbox, f"Pitch {n} to Northwind", start=soon(days=3 + n))
                  for n in range(3)]
        running.service.reconcile_calendars()
        running.service.sync(every_calendar=True)  # a digest of three, queued
        sandbox.google.cancel_event(ALICE, events[1]["id"])
        running.service.sync(every_calendar=True)
        running.service.cycle()
        [digest] = sandbox.mail.wait_for(1)
        assert digest["Subject"] == "2 customer meetings: in person or virtual?"
        text = digest.get_body(("plain",)).get_content()
        assert "Pitch 0" in text and "Pitch 2" in text and "Pitch 1" not in text
        with store_session(database_url) as session:
            states = sorted(session.scalars(select(Outbox.state).where(
                Outbox.email_kind == "digest")))
        assert states == ["cancelled", "done"]
    finally:
        running.close()


def test_a_question_held_past_the_deadline_is_not_sent_after_the_decision(
        running, sandbox, database_url):
    book_google(sandbox, "Pitch to Northwind")
    running.service.reconcile_calendars()
    running.service.sync(every_calendar=True)
    admin_of(running).pause(None, [ALICE])
    later = running.service.clock() + timedelta(days=2, hours=12)  # past the deadline
    running.service.clock = lambda: later
    running.service.follow_up()  # paused: it waits too
    admin_of(running).resume(None, [ALICE])
    running.service.cycle()
    [only] = sandbox.mail.wait_for(1)
    assert "in person or virtual?" not in only["Subject"]  # the confirmation, not the question
    with store_session(database_url) as session:
        kinds = {row.email_kind: row.state for row in session.scalars(
            select(Outbox).where(Outbox.kind == "email"))}
    assert kinds == {"question": "cancelled", "confirmation": "done"}


def test_removing_a_calendar_drops_the_pending_effects_of_meetings_decided_already(
        running, sandbox, database_url):
    book_google(sandbox, "Pitch to Northwind")
    running.service.reconcile_calendars()
    running.service.sync(every_calendar=True)
    with store_session(database_url) as session:  # as if annotated, with an effect pending
        session.scalars(select(Conversation)).one().state = "annotated"
    admin_of(running).remove(None, [ALICE])
    running.service.cycle()
    assert sandbox.mail.messages == []
    with store_session(database_url) as session:
        assert set(session.scalars(select(Outbox.state))) == {"cancelled"}


def test_workers_starting_together_add_the_configs_calendars_once(sandbox, database_url):
    config = Config.model_validate(sandbox.config(database_url))
    stores = [Store.open(database_url) for _ in range(4)]
    start = threading.Barrier(len(stores))
    failures: list[BaseException] = []

    def start_up(store: Store) -> None:
        start.wait()
        try:
            with store.transaction() as session:
                reconcile(session, config, datetime.now(UTC))
        except BaseException as err:  # noqa: BLE001 - collected for the assertion
            failures.append(err)

    threads = [threading.Thread(target=start_up, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert failures == []
    with store_session(database_url) as session:
        assert sorted(session.scalars(select(WatchedCalendar.address))) == [ALICE, BOB]
