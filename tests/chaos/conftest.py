"""The chaos suite's sizes: `small` in CI, `full` on demand (`--chaos-size full`, an option
of tests/conftest.py so that it is known however pytest is started)."""

from __future__ import annotations

import pytest

from tests.chaos.harness import Size

# The small size is what CI affords (about a minute for both stores, so without the
# withdrawn consent that costs a minute of its own, see Size); the full size is the issue's:
# a thousand meetings, and a kill schedule of at least twenty on each store.
SIZES = {
    ("small", "sqlite"): Size(organisers=8, meetings_per_organiser=8, workers=1, kills=8,
                              deadline_seconds=150, withdraw_consent=False),
    ("small", "postgresql"): Size(organisers=12, meetings_per_organiser=10, workers=3, kills=20,
                                  deadline_seconds=150, withdraw_consent=False),
    ("full", "sqlite"): Size(organisers=50, meetings_per_organiser=20, workers=1, kills=20,
                             deadline_seconds=1200),
    ("full", "postgresql"): Size(organisers=50, meetings_per_organiser=20, workers=3, kills=30,
                                 deadline_seconds=1200),
}


@pytest.fixture()
def chaos_size(request: pytest.FixtureRequest) -> str:
    return request.config.getoption("--chaos-size")
