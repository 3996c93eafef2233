"""Whether a reply may steer a meeting, and what it then says.

A reply counts only if it carries a genuine, unexpired token for a question still open, comes
from that meeting's organiser or a delegate the admin named, is not an automatic reply or the
assistant's own mail, and (when the admin requires it) passed DMARC at our receiving server.
Everything else is ignored with a logged reason and never answered: a stranger who mails the
assistant gets nothing back. An accepted reply that cannot be read asks for a clarification.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from assistant.checklist import Checklist
from assistant.language import N_
from assistant.models import Format, Side
from assistant.replies import MORE_LETTERS, Problem, Reading, read_reply
from assistant.reply_mail import ReplyEmail
from assistant.reply_tokens import BadToken, ReplyTokens

TWO_ANSWERS = N_("question {number} got two answers")


@dataclass(frozen=True)
class OpenQuestion:
    """What the service knows of one question email still waiting for its answer."""

    conversation_id: int
    organiser: str
    asked: tuple[int, ...]  # row numbers, in the order the email listed them
    delegates: frozenset[str] = frozenset()
    last_reply_written_at: datetime | None = None  # of the last reply applied, by its Date


@dataclass(frozen=True)
class Ignored:
    reason: str


@dataclass(frozen=True)
class Unclear:
    question: OpenQuestion
    reading: Reading


@dataclass(frozen=True)
class Answered:
    question: OpenQuestion
    answers: Mapping[int, Side]  # row number -> side, positional letters already placed
    decision: Format | None


Verdict = Ignored | Unclear | Answered


def judge_reply(
    reply: ReplyEmail,
    *,
    tokens: ReplyTokens,
    open_question: Callable[[int], OpenQuestion | None],
    assistant_address: str,
    now: datetime,
    require_dmarc: bool = False,
    checklist: Checklist | None = None,
) -> Verdict:
    """What to do with a reply; see the module docstring for who may answer."""
    if reply.auto_reply:
        return Ignored("an automatic reply or bounce")
    local, _, domain = assistant_address.lower().partition("@")
    sender_local, _, sender_domain = reply.sender.partition("@")
    if sender_domain == domain and sender_local.partition("+")[0] == local:
        return Ignored("the assistant's own mail")
    if reply.token is None:
        return Ignored("no token: not a reply to a question")
    try:
        claims = tokens.verify(reply.token, now)
    except BadToken as err:
        return Ignored(f"token refused: {err}")
    question = open_question(claims.conversation_id)
    if question is None:
        return Ignored("the question is no longer open (answered, decided or cancelled)")
    allowed = {question.organiser.lower(), *(d.lower() for d in question.delegates)}
    if reply.sender not in allowed:
        return Ignored(f"{reply.sender or 'an unknown sender'} may not answer for this meeting")
    if require_dmarc and not reply.dmarc_pass:
        return Ignored("the sender's domain did not pass DMARC")
    if (reply.written_at and question.last_reply_written_at
            and reply.written_at <= question.last_reply_written_at):
        # Its Date is older than the answer already applied: the same reply sent again (a
        # Message-ID can change on the way), which must not undo a later change of mind.
        return Ignored("written before the reply already applied: an old reply sent again")
    reading = read_reply(reply, checklist)
    answers = dict(reading.answers)
    if len(reading.positional) > len(question.asked):
        return Unclear(question, _with_problem(reading, Problem(MORE_LETTERS)))
    for number, side in zip(question.asked, reading.positional, strict=False):
        if answers.get(number, side) is not side:
            return Unclear(question, _with_problem(
                reading, Problem(TWO_ANSWERS, {"number": str(number)})))
        answers[number] = side
    if reading.unclear:
        return Unclear(question, reading)
    if not answers and reading.decision is None:
        return Ignored("nothing to read (a thank-you)")
    return Answered(question, answers, reading.decision)


def _with_problem(reading: Reading, problem: Problem) -> Reading:
    return replace(reading, unclear=True, problems=(*reading.problems, problem))
