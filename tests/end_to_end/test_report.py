"""`assistant report` after the real flow: meetings asked, answered and annotated, then reported."""

from __future__ import annotations

import json
import re
import statistics

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from assistant.cli import cli
from assistant.store.tables import Conversation, SeenMeeting
from integrations.sandbox.environment import to_toml
from tests.end_to_end.conftest import (
    ALICE,
    BOB,
    book_google,
    book_outlook,
    reply_to,
    soon,
    store_session,
)


@pytest.fixture()
def reported(running, sandbox, database_url, tmp_path):
    """Three customer meetings: two asked and answered virtual (shortened), one decided in
    person without a question, whose organiser answers its confirmation anyway."""
    book_google(sandbox, "Pitch to Northwind")  # 60 minutes, the organiser says "virtual"
    book_google(sandbox, "Northwind workshop", start=soon(days=4), minutes=90)  # "video"
    # Onboarding, a first meeting, one guest, few other meetings: in person, settled.
    book_outlook(sandbox, "Northwind onboarding", start=soon(days=5))
    running.service.cycle()
    emails = sandbox.mail.wait_for(3)
    questions = [email for email in emails if "in person or virtual?" in email["Subject"]]
    assert [email["To"] for email in questions] == [ALICE, ALICE]
    assert _asked(database_url, "Northwind onboarding") == []
    for question in questions:
        text = "virtual" if question["Subject"].startswith("Pitch") else "video"
        running.inbox.receive(reply_to(question, text))
    [settled] = [email for email in emails if email["To"] == BOB]
    running.inbox.receive(reply_to(settled, "1A"))  # row 1 again, which the title told
    running.service.cycle()
    running.service.cycle()  # the confirmations go out
    config = tmp_path / "assistant.toml"
    config.write_text(to_toml(sandbox.config(database_url)))
    return config


def _asked(database_url: str, title: str) -> list[int]:
    with store_session(database_url) as session:
        return list(session.scalar(select(Conversation.questions).join(SeenMeeting)
                                   .where(SeenMeeting.title == title)))


def _report(config, *args: str):
    result = CliRunner().invoke(cli, ["report", "--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result


def test_the_json_report_counts_the_flow_and_a_team_narrows_it(reported, database_url):
    data = json.loads(_report(reported, "--format", "json").stdout)
    meetings = data["meetings"]
    assert (meetings["detected"], meetings["decided"]) == (3, 3)
    assert (meetings["in_person"], meetings["virtual"]) == (1, 2)
    answers = data["answers"]
    assert (answers["asked"], answers["answered"], answers["answer_rate"]) == (2, 2, 1.0)
    burden = data["burden"]
    asked = [len(_asked(database_url, title)) for title in ("Pitch to Northwind",
                                                            "Northwind workshop")]
    assert burden["median_questions"] == statistics.median(asked) and min(asked) > 0
    assert (burden["decided_unasked"], burden["decided"], burden["unasked_share"]) == \
        (1, 3, 0.333)
    # Two questions and four confirmations (Bob's reply to his is confirmed too).
    assert (burden["emails"], burden["emails_per_meeting"]) == (6, 2.0)
    assert 0 <= answers["median_hours"] < 0.1  # answered within the test's seconds
    assert data["minutes_given_back"] == {"meetings": 2, "minutes": 20}  # 60 → 50, 90 → 80
    assert sum(week["minutes_given_back"] for week in data["weeks"]) == 20
    assert sum(week["detected"] for week in data["weeks"]) == 3
    overrides = data["overrides"]
    assert (overrides["format_chosen"], overrides["chose_virtual"]) == (2, 2)
    assert overrides["rows_overwritten"] == 1
    # Row 1: the pitch's title tells it; the workshop (not Alice's first meeting with
    # Northwind) is asked it and decided by "video"; Bob answers it though the title told it.
    # (The onboarding's row 1 counts as answered, its latest decision resting on Bob's reply.)
    importance = next(row for row in data["rows"] if row["key"] == "importance")
    assert (importance["inferred"], importance["asked"], importance["unknown"]) == (1, 1, 1)
    assert (importance["answered"], importance["overwritten"]) == (1, 1)
    assert data["emails_sent"]["question"] == 2 and data["emails_sent"]["confirmation"] == 4

    bob = json.loads(_report(reported, "--json", "--team", BOB).stdout)
    assert bob["meetings"]["detected"] == 1 and bob["meetings"]["in_person"] == 1
    assert bob["teams"] == [BOB] and bob["minutes_given_back"]["minutes"] == 0
    everyone = json.loads(_report(reported, "--json", "--team", "example.com",
                                  "--team", ALICE).stdout)
    assert everyone["meetings"]["detected"] == 3


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_html_report_embeds_its_charts_and_the_text_report_is_tables(reported, tmp_path):
    out = tmp_path / "report.html"
    _report(reported, "--format", "html", "--out", str(out),
            "--team", "example.com", "--team", "<b>@example.com")
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "<script" not in page
    assert "&lt;b&gt;@example.com" in page and "<b>@" not in page
    svgs = re.findall(r"<svg\b[^>]*>", page)
    assert len(svgs) == 5 and all('role="img"' in svg and "aria-label=" in svg for svg in svgs)
    assert "In person or virtual, by week: stacked bars per week. 1 in person and 2 virtual" \
        in page
    assert "no meetings yet" not in page
    assert "How the figures are computed" in page and "Minutes given back" in page

    text = _report(reported, "--format", "text").stdout
    assert re.search(r"^  detected +3$", text, re.M)
    assert re.search(r"^  answered +2  100%$", text, re.M)
    assert re.search(r"^  decided with no question +1  33% of 3 decided$", text, re.M)
    assert re.search(r"^  emails per meeting +2 \(6 emails, 3 meetings\)$", text, re.M)
    assert "20 minutes from 2 shortened virtual meetings" in text
    # row, asked, inferred, from config, answered, unknown, overwritten
    assert re.search(r"^  1 importance +1 +1 +0 +1 +1 +1$", text, re.M)


def test_a_missing_database_is_named_not_a_traceback(tmp_path):
    config = tmp_path / "assistant.toml"
    config.write_text('[organisation]\nname = "Example Ltd"\ndomains = ["example.com"]\n')
    result = CliRunner().invoke(cli, ["report", "--config", str(config)])
    assert result.exit_code == 1
    assert "no database at" in result.output and "assistant run" in result.output
    assert not (tmp_path / "assistant.sqlite3").exists()  # a report never makes one

    (tmp_path / "assistant.sqlite3").write_bytes(b"")
    result = CliRunner().invoke(cli, ["report", "--config", str(config)])
    assert result.exit_code == 1 and "no assistant data yet" in result.output


def test_an_empty_store_says_no_meetings_yet(tmp_path):
    from assistant.store import Store

    Store.open(f"sqlite:///{tmp_path / 'assistant.sqlite3'}").close()
    config = tmp_path / "assistant.toml"
    config.write_text('[organisation]\nname = "Example Ltd"\ndomains = ["example.com"]\n')
    text = _report(config).stdout
    assert "No meetings yet" in text
    page = _report(config, "--format", "html").stdout
    assert page.count("no meetings yet") >= 5  # each chart says so (drawn as paths: alt text)


def test_a_team_that_is_neither_domain_nor_address_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["report", "--team", "not a domain"])
    assert result.exit_code == 2 and "--team" in result.output
