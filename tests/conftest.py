"""Shared test fixtures: the shipped checklist, a renderer and a default config."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from assistant.checklist import Checklist, load_checklist
from assistant.config import Config, config_for_domains
from assistant.rendering import Renderer

pytest_plugins = ["tests.postgres"]  # a throwaway PostgreSQL cluster, for the tests that ask

# `--hypothesis-profile fuzz` (hypothesis's own pytest option) with `-m fuzz`: the fuzz targets
# at 100,000 inputs each, with no time limit per input. CI keeps hypothesis's default of 100.
settings.register_profile("fuzz", max_examples=100_000, deadline=None,
                          suppress_health_check=list(HealthCheck))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--chaos-size", choices=("small", "full"), default="small",
                     help="the chaos suite's size (tests/chaos): small, as CI runs it, or full "
                          "(1,000 meetings on each store)")


@pytest.fixture(scope="session")
def checklist() -> Checklist:
    return load_checklist()


@pytest.fixture(scope="session")
def renderer() -> Renderer:
    return Renderer()


@pytest.fixture()
def config() -> Config:
    return config_for_domains(["example.com"])
