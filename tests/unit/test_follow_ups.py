"""Reminders, deadlines, clarifications and the daily cap, each rule in a line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from assistant.follow_ups import (
    Kind,
    Sent,
    clarification_allowed,
    deadline_passed,
    reminder_due,
    split_for_cap,
)

NOW = datetime(2026, 11, 20, 9, tzinfo=UTC)
IN_A_WEEK = NOW + timedelta(days=7)


def asked(hours_ago: float, kind=Kind.QUESTION, meeting="m1", organiser="alice@example.com"):
    return Sent(kind, organiser, meeting, NOW - timedelta(hours=hours_ago))


def remind(sent, start=IN_A_WEEK):
    return reminder_due(sent, "m1", start, NOW, reminder_after_hours=24, decide_before_hours=24)


def test_a_reminder_comes_once_after_the_delay():
    assert not remind([asked(23)])
    assert remind([asked(25)])
    assert not remind([asked(25), asked(1, Kind.REMINDER)])


def test_no_reminder_when_the_deadline_is_too_close():
    assert not remind([asked(25)], start=NOW + timedelta(hours=25))
    assert remind([asked(25)], start=NOW + timedelta(hours=27))


def test_no_reminder_for_a_meeting_never_asked():
    assert not remind([asked(30, meeting="other")])


def test_the_deadline_is_hours_before_the_meeting():
    assert not deadline_passed(NOW + timedelta(hours=25), NOW, 24)
    assert deadline_passed(NOW + timedelta(hours=24), NOW, 24)


def test_one_clarification_per_meeting_per_day():
    assert clarification_allowed([], "m1", NOW)
    assert not clarification_allowed([asked(23, Kind.CLARIFICATION)], "m1", NOW)
    assert clarification_allowed([asked(25, Kind.CLARIFICATION)], "m1", NOW)
    assert clarification_allowed([asked(1, Kind.CLARIFICATION, meeting="m2")], "m1", NOW)


def test_the_daily_cap_sends_the_rest_as_one_digest():
    waiting = [f"m{i}" for i in range(6)]
    assert split_for_cap([], "alice@example.com", waiting[:5], NOW, cap=5) == (waiting[:5], [])
    singles, digest = split_for_cap([], "alice@example.com", waiting, NOW, cap=5)
    assert singles == waiting[:4] and digest == waiting[4:]
    earlier = [asked(3, meeting=f"x{i}") for i in range(4)]
    assert split_for_cap(earlier, "alice@example.com", waiting, NOW, cap=5) == ([], waiting)
    others = [asked(3, meeting=f"x{i}", organiser="bob@example.com") for i in range(9)]
    assert split_for_cap(others, "alice@example.com", waiting[:2], NOW, cap=5)[1] == []
