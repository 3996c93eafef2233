"""Who may answer: tokens, senders, open questions, DMARC, and positional letters placed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from assistant.models import Format, Side
from assistant.reply_acceptance import Answered, Ignored, OpenQuestion, Unclear, judge_reply
from assistant.reply_mail import ReplyEmail, read_reply_email
from assistant.reply_tokens import ReplyTokens

NOW = datetime(2026, 11, 20, 9, tzinfo=UTC)
TOKENS = ReplyTokens(b"k" * 32)
QUESTION = OpenQuestion(7, "alice@example.com", asked=(2, 5, 9),
                        delegates=frozenset({"pa@example.com"}))
ASSISTANT = "meeting-assistant@example.com"


def reply(text="2A 5B", *, sender="alice@example.com", token=None, **fields) -> ReplyEmail:
    token = token if token is not None else TOKENS.issue(7, NOW + timedelta(days=7))
    return ReplyEmail(sender=sender, token=token, auto_reply=False, new_text=text, **fields)


def judge(email: ReplyEmail, *, open_questions=(QUESTION,), **options):
    by_id = {q.conversation_id: q for q in open_questions}
    return judge_reply(email, tokens=TOKENS, open_question=by_id.get,
                       assistant_address=ASSISTANT, now=NOW, **options)


def test_the_organisers_answer_is_accepted():
    verdict = judge(reply("2A 5B\nin person"))
    assert verdict == Answered(QUESTION, {2: Side.A, 5: Side.B}, Format.IN_PERSON)


def test_a_delegate_may_answer():
    assert isinstance(judge(reply(sender="pa@example.com")), Answered)


def test_positional_letters_follow_the_order_asked():
    assert judge(reply("B A A")).answers == {2: Side.B, 5: Side.A, 9: Side.A}


@pytest.mark.parametrize(("email", "reason"), [
    (reply(sender="eve@evil.example"), "may not answer"),
    (reply(token=""), "no token"),
    (reply(token=TOKENS.issue(7, NOW - timedelta(minutes=1))), "expired"),
    (reply(token=ReplyTokens(b"x" * 32).issue(7, NOW + timedelta(days=1))), "signature"),
    (reply(token=TOKENS.issue(8, NOW + timedelta(days=1))), "no longer open"),  # another meeting
    (reply(sender="meeting-assistant+abc@example.com"), "own mail"),
    (replace(reply(), auto_reply=True), "automatic"),
    (reply("Thanks!"), "nothing to read"),
])
def test_what_is_ignored_and_why(email, reason):
    if email.token == "":
        email = replace(email, token=None)
    verdict = judge(email)
    assert isinstance(verdict, Ignored) and reason in verdict.reason


def test_a_reused_token_finds_no_open_question():
    assert isinstance(judge(reply(), open_questions=()), Ignored)


def test_dmarc_is_required_only_when_asked():
    assert isinstance(judge(reply(), require_dmarc=False), Answered)
    assert isinstance(judge(reply(), require_dmarc=True), Ignored)
    assert isinstance(judge(reply(dmarc_pass=True), require_dmarc=True), Answered)


@pytest.mark.parametrize("text", ["A B A B", "2B\nA B A", "3C"])
def test_unreadable_or_contradictory_answers_ask_for_a_clarification(text):
    assert isinstance(judge(reply(text)), Unclear)


def test_one_click_links_are_signed_expiring_and_distinct():
    from assistant.answer_links import DECISION_ROW, AnswerLinks
    from assistant.reply_tokens import BadToken

    links = AnswerLinks(b"k" * 32, "https://assistant.example.com/")
    expires = NOW + timedelta(days=3)
    first = links.link(7, 5, Side.B, expires)
    again = links.link(7, 5, Side.B, expires)
    assert first.startswith("https://assistant.example.com/answer/") and first != again
    token = first.rsplit("/", 1)[1]
    claims = links.verify(token, NOW)
    assert (claims.conversation_id, claims.row, claims.choice) == (7, 5, Side.B)
    assert links.verify(links.link(7, DECISION_ROW, Format.VIRTUAL, expires).rsplit("/", 1)[1],
                        NOW).choice is Format.VIRTUAL
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad, now in ((forged, NOW), (token, expires + timedelta(minutes=1)), ("x", NOW)):
        with pytest.raises(BadToken):
            links.verify(bad, now)
    with pytest.raises(BadToken):  # a reply token's secret does not make a link
        AnswerLinks(b"x" * 32, "https://a.example").verify(token, NOW)


def test_an_old_reply_sent_again_cannot_undo_a_later_answer():
    applied = replace(QUESTION, last_reply_written_at=datetime(2026, 11, 19, 9, 30, tzinfo=UTC))

    def judged(written_at: datetime | None):
        return judge(reply(written_at=written_at), open_questions=(applied,))

    old = judged(datetime(2026, 11, 19, 9, 29, tzinfo=UTC))
    assert isinstance(old, Ignored) and "old reply sent again" in old.reason
    assert isinstance(judged(datetime(2026, 11, 19, 9, 30, tzinfo=UTC)), Ignored)
    assert isinstance(judged(datetime(2026, 11, 19, 9, 31, tzinfo=UTC)), Answered)
    assert isinstance(judged(None), Answered)  # no readable Date: nothing to tell it by


def test_a_replys_date_is_read_with_its_zone():
    raw = b"From: alice@example.com\nDate: Thu, 19 Nov 2026 10:31:00 +0100\n\n1A\n"
    assert read_reply_email(raw).written_at == datetime(2026, 11, 19, 9, 31, tzinfo=UTC)
    assert read_reply_email(b"From: a@example.com\nDate: soon\n\n1A\n").written_at is None
