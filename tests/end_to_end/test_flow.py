"""A customer meeting from booking to annotated invite, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from assistant import block
from tests.end_to_end.conftest import ALICE, BOB, book_google, book_outlook, reply_to


def test_a_google_pitch_is_asked_answered_and_annotated_once(running, sandbox):
    event = book_google(sandbox, "Pitch to Northwind")
    running.service.cycle()
    [question] = sandbox.mail.wait_for(1)
    assert question["To"] == ALICE and "in person or virtual?" in question["Subject"]

    running.inbox.receive(reply_to(question, "virtual"))
    running.service.cycle()
    mails = sandbox.mail.wait_for(2)
    assert [m["Subject"].split(": ")[-1].split(" [")[0] for m in mails][1] == "virtual"

    after = sandbox.google.event(ALICE, event["id"])
    assert block.find_block(after["description"], False) is not None
    assert "cameras on" in after["description"]
    start, end = (datetime.fromisoformat(after[k]["dateTime"]) for k in ("start", "end"))
    assert (end - start).total_seconds() == 50 * 60
    assert after.get("hangoutLink") or after.get("conferenceData")

    running.service.cycle()
    running.service.cycle()
    assert len(sandbox.mail.messages) == 2 and sandbox.mail.deliveries == 2
    assert sandbox.google.event(ALICE, event["id"])["etag"] == after["etag"]


def test_an_outlook_meeting_is_asked_answered_and_annotated_once(running, sandbox):
    event = book_outlook(sandbox, "Northwind onboarding")
    running.service.cycle()
    [question] = sandbox.mail.wait_for(1)
    assert question["To"] == BOB
    running.inbox.receive(reply_to(question, "in person please"))
    running.service.cycle()
    after = sandbox.graph.event(BOB, event["id"])
    assert "Meeting format" in after["body"]["content"]
    running.service.cycle()
    assert len(sandbox.mail.messages) == 2
