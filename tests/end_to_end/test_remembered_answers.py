"""What an organiser told the assistant about a customer is remembered for its next meetings:
through the real service, on SQLite and PostgreSQL, and until an admin forgets it."""

from __future__ import annotations

from datetime import UTC, datetime

from click.testing import CliRunner

from assistant.cli import cli
from assistant.store.tables import Conversation
from integrations.sandbox.environment import to_toml
from tests.end_to_end.conftest import ALICE, book_google, reply_to, soon
from tests.end_to_end.test_changes import run_cycle, talk, text_of

GUEST = ("erin@acme.example",)


def asked(running, event_id: str) -> list[int]:
    return list(talk(running, event_id).questions)


def question_about(sandbox, event: dict) -> object:
    [question] = [m for m in sandbox.mail.to(ALICE)
                  if m["Subject"].startswith(f"{event['summary']}: in person or virtual?")]
    return question


def test_a_second_meeting_with_the_customer_reuses_what_the_organiser_said(
        running, sandbox, database_url, tmp_path):
    # A first sync with Acme: nothing known of the customer, and the rows lean in person
    # only a little, so some rows are asked. Alice answers them, and four rows about Acme.
    first = book_google(sandbox, "Sync with Acme", start=soon(days=8), guests=GUEST)
    run_cycle(running)
    first_asked = asked(running, first["id"])
    assert first_asked
    question = question_about(sandbox, first)
    answers = " ".join(sorted({*(f"{n}A" for n in first_asked), "5A", "6A", "8A", "10A"}))
    running.inbox.receive(reply_to(question, answers))
    run_cycle(running)
    assert str(talk(running, first["id"]).state) == "annotated"

    # Her next sync with Acme: what Acme values, where it is, its competitors and the power
    # balance are known already, with whose answer they are: six rows lean in person, one
    # (a sync) virtual, and no four answers could overturn that. Nothing is asked.
    second = book_google(sandbox, "Sync with Acme", start=soon(days=15), guests=GUEST)
    run_cycle(running)
    assert asked(running, second["id"]) == [] and len(first_asked) > 0
    told = _told_of(running, second["id"])
    assert {key for key, why in told.items() if "alice@example.com's answer of" in why
            and "for acme.example" in why} == {"values", "location", "stability", "power"}
    [confirmation] = [m for m in sandbox.mail.to(ALICE) if m["Subject"].startswith(
        "Sync with Acme: in person") and "so I didn't ask" in text_of(m)]
    assert "4 remembered from earlier answers about the customer" in text_of(confirmation)

    # An admin learns that Acme's situation changed and forgets it: the next meeting with
    # Acme knows nothing of it again.
    config = tmp_path / "assistant.toml"
    config.write_text(to_toml(sandbox.config(database_url)))
    listed = CliRunner().invoke(cli, ["remembered", "list", "--json", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    assert '"domain": "acme.example"' in listed.output and '"key": "power"' in listed.output
    forgot = CliRunner().invoke(cli, ["remembered", "forget", "acme.example",
                                      "--config", str(config)])
    assert forgot.exit_code == 0 and "Forgot 4 answers about acme.example." in forgot.output
    third = book_google(sandbox, "Sync with Acme", start=soon(days=22), guests=GUEST)
    run_cycle(running)
    assert not {"values", "location", "stability", "power"} & set(_told_of(running,
                                                                          third["id"]))


def test_a_remembered_answer_is_shown_in_the_question_and_not_asked_again(running, sandbox):
    first = book_google(sandbox, "Sync with Acme", start=soon(days=8), guests=GUEST)
    run_cycle(running)
    running.inbox.receive(reply_to(question_about(sandbox, first), "6B"))  # Acme is far away
    run_cycle(running)
    second = book_google(sandbox, "Catch-up with Acme", start=soon(days=12),
                         guests=(*GUEST, "finn@acme.example"))
    run_cycle(running)
    assert 6 not in asked(running, second["id"]) and asked(running, second["id"])
    today = datetime.now(UTC)
    assert ("6. location: B, far away, or the customer works from home (alice@example.com's "
            f"answer of {today.day} {today:%b} for acme.example)"
            ) in text_of(question_about(sandbox, second))


def _told_of(running, event_id: str) -> dict[str, str]:
    """The rows the service knows of a meeting without its organiser's answers, with why."""
    service = running.service
    conversation_id = talk(running, event_id).id
    with service.store.transaction() as session:
        assessment = service._assess_stored(session, session.get(Conversation, conversation_id))
    return {key: answer.why for key, answer in assessment.told.items()}
