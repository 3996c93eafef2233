"""The virtual duration rule: an hour becomes the target, longer meetings lose as much."""

from __future__ import annotations

from datetime import timedelta

import pytest

from assistant.annotate import virtual_duration

TABLE = [
    # minutes, at T=45, at T=50
    (30, 30, 30),
    (45, 45, 45),
    (50, 45, 50),
    (55, 45, 50),
    (60, 45, 50),
    (90, 75, 80),
    (120, 105, 110),
]


@pytest.mark.parametrize(("minutes", "at_45", "at_50"), TABLE)
def test_duration_table(minutes, at_45, at_50):
    duration = timedelta(minutes=minutes)
    assert virtual_duration(duration, 45) == timedelta(minutes=at_45)
    assert virtual_duration(duration, 50) == timedelta(minutes=at_50)


@pytest.mark.parametrize("minutes", range(1, 300, 7))
@pytest.mark.parametrize("target", [45, 50])
def test_never_lengthened(minutes, target):
    duration = timedelta(minutes=minutes)
    assert virtual_duration(duration, target) <= duration
