"""A customer meeting from booking to annotated invite, on SQLite and on PostgreSQL."""

from __future__ import annotations

import re
from datetime import datetime
from email.message import EmailMessage
from urllib.parse import unquote

from assistant import block
from tests.end_to_end.conftest import (
    ALICE,
    BOB,
    Running,
    book_google,
    book_outlook,
    reply_to,
    soon,
)


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


def test_beyond_the_daily_cap_the_rest_of_the_days_meetings_come_as_one_digest(
    sandbox, database_url
):
    running = Running(sandbox, database_url, mail={"daily_question_cap": 2})
    try:
        events = [book_google(sandbox, f"Pitch {n} to Northwind", start=soon(days=3 + n))
                  for n in range(4)]
        running.service.cycle()
        mails = sandbox.mail.wait_for(2)
        assert len(mails) == 2  # one question, then one digest with the other three
        question, digest = sorted(mails, key=lambda m: "customer meetings" in m["Subject"])
        assert question["Subject"].startswith("Pitch 0 to Northwind")
        assert digest["Subject"] == "3 customer meetings: in person or virtual?"
        # Each meeting in the digest is answered through its own reply link (a mailto:).
        text = digest.get_body(("plain",)).get_content()
        link = re.search(r"mailto:(\S+)\?subject=(\S+)", text)
        assert link is not None
        reply = EmailMessage()
        reply["From"], reply["To"] = ALICE, link.group(1)
        reply["Subject"] = unquote(link.group(2))
        reply["Message-ID"] = "<digest-answer@example.com>"
        reply.set_content("virtual")
        running.inbox.receive(reply)
        running.service.cycle()
        annotated = [e for e in events
                     if "cameras on" in sandbox.google.event(ALICE, e["id"]).get("description", "")]
        assert [e["id"] for e in annotated] == [events[1]["id"]]
    finally:
        running.close()
