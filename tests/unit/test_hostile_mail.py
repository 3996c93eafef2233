"""Mail built to hurt the reply reader: deep nesting, pathological headers, slow HTML.

Anyone can mail the assistant. Whatever arrives, the reader returns a reading (at worst
`unreadable`, saying why) in time that grows with the mail's size, never faster.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant import reply_mail
from assistant.models import Side
from assistant.replies import read_answer, read_reply
from assistant.reply_mail import MAX_MIME_DEPTH, html_to_text, read_reply_email

ASSISTANT = "meeting-assistant@example.com"
TOKEN = "a" * 30


def nested_mime(depth: int, leaf: str = "1A") -> bytes:
    """A reply whose text part sits inside `depth` multiparts, each inside the last."""
    head = (f"From: alice@example.com\r\nTo: meeting-assistant+{TOKEN}@example.com\r\n"
            "Message-ID: <deep@example.com>\r\nSubject: Re: Acme\r\nMIME-Version: 1.0\r\n")
    opening = "".join(f"Content-Type: multipart/mixed; boundary=b{n}\r\n\r\n--b{n}\r\n"
                      for n in range(depth))
    closing = "".join(f"\r\n--b{n}--" for n in reversed(range(depth)))
    return (head + opening + f"Content-Type: text/plain\r\n\r\n{leaf}" + closing).encode()


def test_a_from_of_three_hundred_parentheses_is_read_without_its_sender():
    raw = (b"From: " + b"(" * 300 + b"alice@example.com\r\n"
           b"To: meeting-assistant+" + TOKEN.encode() + b"@example.com\r\n\r\n1A\r\n")
    assert len(raw) < 400
    reply = read_reply_email(raw, ASSISTANT)
    assert reply.sender == "" and reply.token == TOKEN and not reply.unreadable
    assert read_answer(reply.new_text).answers == {1: Side.A}


@pytest.mark.parametrize("parts_counted", [True, False], ids=["counted", "parsed"])
def test_a_mime_tree_twelve_hundred_deep_is_unreadable_and_says_so(parts_counted, monkeypatch):
    """Refused for its parts before parsing; and were that count to miss it, the parser's own
    RecursionError is a reading too."""
    if not parts_counted:
        monkeypatch.setattr(reply_mail, "MAX_MIME_PARTS", 10_000)
    reply = read_reply_email(nested_mime(1200), ASSISTANT)
    assert reply.unreadable and reply.new_text == "" and reply.token is None
    assert ("RecursionError" in reply.unreadable) is not parts_counted
    assert reply.sender == "alice@example.com" and reply.message_id == "<deep@example.com>"


def test_a_mail_of_thousands_of_parts_is_unreadable():
    parts = "".join(f"--XX\r\nContent-Type: text/plain\r\n\r\n{n}A\r\n" for n in range(300))
    raw = ("From: alice@example.com\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
           f"{parts}--XX--\r\n").encode()
    assert "more than 256 MIME parts" in read_reply_email(raw, ASSISTANT).unreadable


def test_a_long_pathological_content_type_is_not_parsed():
    def content_type(n: int) -> Callable[[], object]:
        raw = f"Content-Type: {'=?utf-8?q?=C3=A9?= ' * n}\r\n\r\n1A\r\n".encode()
        return lambda: read_reply_email(raw, ASSISTANT)

    small, large = grows_linearly(content_type, 2_000)  # CPython's parser: quadratic
    assert large < AT_MOST * small + 0.01, \
        f"2,000 encoded words: {small:.3f} s; 8,000: {large:.3f} s"
    assert content_type(8_000)().new_text == "1A"  # type: ignore[attr-defined]


def test_mime_nested_deeper_than_real_mail_is_unreadable_before_anything_recurses():
    assert read_reply_email(nested_mime(4), ASSISTANT).new_text == "1A"
    too_deep = read_reply_email(nested_mime(MAX_MIME_DEPTH), ASSISTANT)
    assert f"nested more than {MAX_MIME_DEPTH} deep" in too_deep.unreadable


def seconds(work: Callable[[], object]) -> float:
    """The quickest of three runs: the one least disturbed by whatever else the machine does.

    Without the garbage collector, whose passes grow with every object alive, whatever the
    code under test does."""
    times = []
    for _ in range(3):
        gc.collect()
        gc.disable()
        try:
            started = time.perf_counter()
            work()
            times.append(time.perf_counter() - started)
        finally:
            gc.enable()
    return min(times)


# Four times the input: linear work takes about four times as long, quadratic sixteen. The
# bound between leaves room for a busy machine.
AT_MOST = 10


def grows_linearly(cost: Callable[[int], Callable[[], object]], small: int) -> tuple[float, float]:
    """The cost at small and at four times small."""
    return seconds(cost(small)), seconds(cost(4 * small))


@pytest.mark.parametrize("closed", [True, False], ids=["closed", "never-closed"])
def test_html_nested_deeply_becomes_text_in_linear_time(closed):
    def nested_divs(n: int) -> Callable[[], object]:
        html = "<div>" * n + "1A" + ("</div>" * n if closed else "")
        return lambda: html_to_text(html)

    small, large = grows_linearly(nested_divs, 5_000)
    assert large < AT_MOST * small, f"5,000 nested divs: {small:.3f} s; 20,000: {large:.3f} s"
    assert html_to_text("<div>" * 10_000 + "1A").strip() == "1A"


def test_a_to_of_a_hundred_thousand_addresses_costs_linear_time_and_finds_the_token():
    def addressed_to(n: int) -> Callable[[], object]:
        others = ", ".join(f"person{i}@customer.example" for i in range(n))
        raw = (f"From: alice@example.com\r\nTo: {others}, meeting-assistant+{TOKEN}"
               f"@example.com\r\nSubject: Re: Acme\r\n\r\n1A\r\n").encode()
        return lambda: read_reply_email(raw, ASSISTANT)

    small, large = grows_linearly(addressed_to, 25_000)
    assert large < AT_MOST * small, f"25,000 addresses: {small:.3f} s; 100,000: {large:.3f} s"
    assert addressed_to(100_000)().token == TOKEN  # type: ignore[attr-defined]


def test_the_html_reading_still_marks_quotes_and_keeps_lines():
    html = ("<html><head><style>p{}</style></head><body><div>1A</div><p>4B<br>in person</p>"
            "<table><tr><td>9</td><td>A</td></tr></table><!-- 2B -->"
            "<blockquote>3B</blockquote><div class='gmail_quote'>5B</div>"
            "<div>thanks</div><div id='divRplyFwdMsg'>From: us</div><p>6B</p></body></html>")
    lines = [line for line in html_to_text(html).splitlines() if line]
    assert lines == ["1A", "4B", "in person", "9 A", "> 3B", "> 5B", "thanks", "> From: us",
                     "> 6B"]


def test_only_the_dmarc_clause_of_our_servers_header_counts():
    def verdict(results: str) -> bool:
        raw = f"Authentication-Results: {results}\r\nFrom: alice@example.com\r\n\r\n1A\r\n"
        return read_reply_email(raw.encode(), authserv_id="mx.example.com").dmarc_pass

    assert verdict("mx.example.com; dmarc=pass header.from=example.com")
    # Text the sender chose, in a comment or a quoted reason, is not the verdict.
    assert not verdict("mx.example.com; spf=pass (dmarc=pass header.from=example.com) "
                       "smtp.mailfrom=eve@evil.example; dmarc=fail header.from=example.com")
    assert not verdict('mx.example.com; dkim=pass reason="dmarc=pass header.from=example.com" '
                       "header.d=evil.example; dmarc=fail header.from=example.com")
    assert not verdict("mx.example.com; dkim=pass header.d=evil.example "
                       "header.s=dmarc=pass header.from=example.com")
    assert not verdict("mx.example.com; " + "(" * 300)


# -- structure-aware generators: the shapes blind fuzzing never reaches -------------------------

@st.composite
def deep_mime(draw: st.DrawFn) -> bytes:
    """Multiparts and attached messages nested up to 1,500 deep, closed or not."""
    depth = draw(st.integers(min_value=1, max_value=1_500))
    kinds = draw(st.lists(st.sampled_from(["multipart/mixed", "multipart/alternative",
                                           "multipart/related", "message/rfc822"]),
                          min_size=1, max_size=4))
    lines = ["From: alice@example.com", f"To: meeting-assistant+{TOKEN}@example.com"]
    for level in range(depth):
        kind = kinds[level % len(kinds)]
        if kind == "message/rfc822":
            lines += ["Content-Type: message/rfc822", "", "From: x@example.com"]
        else:
            lines += [f"Content-Type: {kind}; boundary=b{level}", "", f"--b{level}"]
    lines += ["Content-Type: text/html", "", "<div>" * draw(st.integers(0, 3_000)) + "1A"]
    if draw(st.booleans()):
        lines += [f"--b{level}--" for level in reversed(range(depth))]
    return "\r\n".join(lines).encode()


def _nested(opening: str, closing: str) -> st.SearchStrategy[str]:
    return st.integers(0, 2_000).map(lambda n: opening * n + "x" + closing * n)


pathological_values = st.one_of(
    _nested("(", ")"), _nested("(", ""), _nested('"', ""), _nested("<", ">"),
    st.integers(0, 20_000).map(lambda n: ", ".join(f"p{i}@e.example" for i in range(n))),
    st.integers(0, 2_000).map(lambda n: "=?utf-8?q?=C3=A9?= " * n),
    st.integers(0, 2_000).map(lambda n: "a\r\n " * n),
    st.integers(0, 5_000).map(lambda n: "mx.example.com; " + "dmarc=pass (" * n),
    st.text(max_size=200),
)


@st.composite
def pathological_headers(draw: st.DrawFn) -> bytes:
    names = ["From", "To", "Cc", "Subject", "Message-ID", "Date", "Authentication-Results",
             "Content-Type", "Auto-Submitted", "Delivered-To"]
    headers = draw(st.lists(st.tuples(st.sampled_from(names), pathological_values),
                            min_size=1, max_size=4))
    text = "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n1A\r\n"
    return text.encode("utf-8", "surrogatepass")


@pytest.mark.fuzz
@settings(deadline=None)  # a megabyte of nesting takes its time; a hang would still show
@given(st.one_of(deep_mime(), pathological_headers()))
def test_reading_hostile_structures_never_raises(raw):
    reply = read_reply_email(raw, ASSISTANT, authserv_id="mx.example.com")
    read_reply(reply)
