"""Reading the new text of a reply: row answers, positional letters, decisions, unclear."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assistant.models import Format, Side
from assistant.replies import read_answer, read_reply
from assistant.reply_mail import read_reply_email
from assistant.reply_tokens import BadToken, ReplyTokens

A, B = Side.A, Side.B


@pytest.mark.parametrize(("text", "answers"), [
    ("1A 4B 9a", {1: A, 4: B, 9: A}),
    ("1: A\n4 - b\n12) B", {1: A, 4: B, 12: B}),
    ("3=a, 5.b", {3: A, 5: B}),
    ("Hi,\n2A and 7 B\nAlice", {2: A, 7: B}),
    ("1A 1a", {1: A}),  # the same answer twice is fine
])
def test_row_answers(text, answers):
    reading = read_answer(text)
    assert dict(reading.answers) == answers and not reading.unclear


@pytest.mark.parametrize(("text", "positional"), [
    ("A B A", (A, B, A)), ("a, b", (A, B)), ("ABA", (A, B, A)), ("A/B/B", (A, B, B)), ("b", (B,)),
])
def test_positional_lines(text, positional):
    reading = read_answer(text)
    assert reading.positional == positional and not reading.unclear


@pytest.mark.parametrize(("text", "decision"), [
    ("In person please.", Format.IN_PERSON),
    ("Let's do it by video!", Format.VIRTUAL),
    ("face-to-face", Format.IN_PERSON),
    ("Online is fine, thanks", Format.VIRTUAL),
    ("in-person", Format.IN_PERSON),
])
def test_decisions_in_words(text, decision):
    assert read_answer(text).decision is decision


@pytest.mark.parametrize("text", [
    "we met virtually last time",
    "The virtual tour was great, see the deck",
    "1A 1B",
    "3C",
    "13A",
    "in person or virtual, I don't mind",
    "In person.\nVirtual.",
])
def test_attempts_that_cannot_be_read_are_unclear(text):
    reading = read_answer(text)
    assert reading.unclear and reading.problems


@pytest.mark.parametrize("text", ["", "Thanks!", "ok, thank you", "Cheers"])
def test_courtesy_and_nothing_are_not_unclear(text):
    reading = read_answer(text)
    assert reading.empty and not reading.unclear


def test_dates_and_times_are_not_answers():
    reading = read_answer("2A. Can we do 3 Dec at 10:30 instead of 2pm?")
    assert dict(reading.answers) == {2: A} and not reading.unclear


def test_an_attachment_is_never_read_as_an_answer():
    from email.message import EmailMessage

    reply = EmailMessage()
    reply["From"] = "alice@example.com"
    reply.set_content("1A 4B\n")
    reply.add_attachment(b"3C 5A virtual " * 250_000, maintype="text", subtype="plain",
                         filename="notes.txt")  # 3.5 MB that reads like answers
    reply.add_attachment(b"\x00" * 100_000, maintype="application", subtype="octet-stream",
                         filename="../../etc/passwd")
    reading = read_answer(read_reply_email(reply.as_bytes()).new_text)
    assert dict(reading.answers) == {1: A, 4: B} and reading.decision is None


def test_a_multipart_whose_inner_boundary_never_comes_is_read_without_a_crash():
    raw = (b'Content-Type: multipart/mixed; boundary="XX"\n\n\n--XX\n'
           b'Content-Type: multipart/related; boundary="\n\n1A 4B')  # found by hypothesis
    read_reply_email(raw, "meeting-assistant@example.com")


def test_html_that_pythons_parser_rejects_reads_as_no_text():
    raw = (b"From: alice@example.com\nContent-Type: text/html\n\n"
           b"<![<!DOCTYPE html>\n<p>1A</p>")  # found by atheris
    assert read_reply_email(raw, "meeting-assistant@example.com").new_text == ""


def test_a_from_header_that_crashes_pythons_address_parser_reads_as_no_sender():
    raw = b'From: "":, ."":\r\nSubject: Re: Acme\r\n\r\n1A\r\n'  # found by atheris
    assert read_reply_email(raw, "meeting-assistant@example.com").sender == ""


@pytest.mark.fuzz
@given(st.text())
def test_reading_never_raises(text):
    read_answer(text)


@given(st.binary(max_size=4000))
def test_reading_any_bytes_as_mail_never_raises(raw):
    reply = read_reply_email(raw, "meeting-assistant@example.com")
    read_reply(reply)


# Mail-shaped input: random bytes seldom get past the first line of the parser, so these are
# messages as a hostile or broken client might write them, header by header and part by part.
HEADER_NAMES = ["From", "Reply-To", "To", "Subject", "Message-ID", "Auto-Submitted",
                "Precedence", "X-Autoreply", "Authentication-Results", "Content-Type",
                "Content-Transfer-Encoding", "Content-Disposition", "MIME-Version", "Date"]
header_values = st.sampled_from([
    "alice@example.com", '"Alice" <alice@example.com>', "<>", "a@b@c", "=?utf-8?b?QUxJQ0U=?=",
    "=?bogus?q?x?=", "=?utf-8?q?broken", "Re: [MFA-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA] Acme",
    "meeting-assistant+" + "A" * 30 + "@example.com", "auto-replied", "bulk", "yes",
    "mx.example.com; dmarc=pass header.from=example.com", 'text/plain; charset="utf-8"',
    "text/html; charset=bogus-8", "multipart/mixed; boundary=XX", "multipart/alternative",
    'multipart/related; boundary="', "message/rfc822", "base64", "quoted-printable", "8bit",
    "x-uuencode", "attachment; filename=../../etc/passwd", "Thu, 32 Dec 2026 25:61:00 +9999",
    '"":, ."":',
]) | st.text(max_size=60)
bodies = st.sampled_from([
    "1A 4B", "in person", "virtual\n\n> On Monday Alice wrote:\n> 1B", "<p>1A</p><blockquote>2B"
    "</blockquote>", "QUJD", "=E2=80=99=\n=ZZ", "--XX\nContent-Type: text/plain\n\n1A\n--XX--",
    "<html><body><div id=divRplyFwdMsg>2A</div>", "\x00\x1b[31m\u202e", "A B A",
]) | st.text(max_size=200)


@st.composite
def mime_messages(draw, depth=0):
    headers = draw(st.lists(st.tuples(st.sampled_from(HEADER_NAMES), header_values),
                            max_size=8))
    lines = [f"{name}: {value}" for name, value in headers]
    if depth < 2 and draw(st.booleans()):
        boundary = draw(st.sampled_from(["XX", "b", "", "=_"]))
        lines.append(f'Content-Type: multipart/{draw(st.sampled_from(["mixed", "alternative"]))}'
                     f'; boundary="{boundary}"')
        parts = draw(st.lists(mime_messages(depth + 1), max_size=3))
        body = "".join(f"\n--{boundary}\n{part}" for part in parts)
        body += f"\n--{boundary}--\n" if draw(st.booleans()) else ""
    else:
        body = draw(bodies)
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return (eol.join(lines) + eol + eol + body).replace("\n", eol)


@pytest.mark.fuzz
@given(mime_messages(), st.sampled_from(["utf-8", "latin-1"]))
def test_reading_any_mime_email_never_raises(text, charset):
    raw = text.encode(charset, errors="replace")
    reply = read_reply_email(raw, "meeting-assistant@example.com", authserv_id="mx.example.com")
    read_reply(reply)


NOW = datetime(2026, 11, 20, 9, tzinfo=UTC)
SECRET = b"s" * 32


def test_a_token_round_trips_and_fits_an_address():
    tokens = ReplyTokens(SECRET)
    token = tokens.issue(123456, NOW + timedelta(days=14))
    assert token.islower() and token.isalnum() and 26 <= len(token) <= 40
    claims = tokens.verify(token.upper(), NOW)  # case may not survive an address
    assert claims.conversation_id == 123456


@pytest.mark.parametrize("tamper", [
    lambda t: t[:-1] + ("a" if t[-1] != "a" else "b"),  # forged signature
    lambda t: ReplyTokens(b"x" * 32).issue(123456, NOW + timedelta(days=1)),  # another secret
    lambda t: "not a token at all",
    lambda t: t[:20],
])
def test_forged_tokens_are_refused(tamper):
    tokens = ReplyTokens(SECRET)
    with pytest.raises(BadToken):
        tokens.verify(tamper(tokens.issue(123456, NOW + timedelta(days=1))), NOW)


def test_an_expired_token_is_refused():
    tokens = ReplyTokens(SECRET)
    with pytest.raises(BadToken, match="expired"):
        tokens.verify(tokens.issue(1, NOW + timedelta(minutes=5)), NOW + timedelta(minutes=6))


def test_a_short_secret_is_refused():
    with pytest.raises(ValueError, match="32 bytes"):
        ReplyTokens(b"short")


def test_only_our_own_servers_dmarc_verdict_counts():
    ours_first = (b"Authentication-Results: mx.example.com; dmarc=pass header.from=example.com\n"
                  b"Authentication-Results: evil.example; dmarc=fail\n"
                  b"From: alice@example.com\n\n1A\n")
    forged_below = (b"Authentication-Results: mx.example.com; dmarc=fail header.from=example.com\n"
                    b"Authentication-Results: evil.example; dmarc=pass\n"
                    b"From: alice@example.com\n\n1A\n")
    assert read_reply_email(ours_first).dmarc_pass
    assert not read_reply_email(forged_below).dmarc_pass


def test_a_dmarc_pass_counts_only_for_the_from_domain_and_from_our_named_server():
    def reply(results: str, sender: str = "alice@example.com") -> bytes:
        return f"Authentication-Results: {results}\nFrom: {sender}\n\n1A\n".encode()

    ours = "mx.example.com; spf=pass; dmarc=pass (p=REJECT) header.from=Example.com"
    assert read_reply_email(reply(ours), authserv_id="mx.example.com").dmarc_pass
    assert read_reply_email(reply(ours)).dmarc_pass  # no server named: the topmost counts
    # Our server adds none, so the sender's own header is on top: naming our server stops it.
    assert not read_reply_email(reply(ours.replace("mx.", "mx.evil.")),
                                authserv_id="mx.example.com").dmarc_pass
    # A pass for another domain, or with no domain at all, is not a pass for the From.
    assert not read_reply_email(reply(ours, "alice@evil.example")).dmarc_pass
    assert not read_reply_email(reply("mx.example.com; dmarc=pass")).dmarc_pass
    assert not read_reply_email(reply("mx.example.com; dmarc=pass header.from=evil.example; "
                                      "dkim=pass header.d=example.com")).dmarc_pass
