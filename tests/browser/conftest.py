"""The admin page served for real and driven by a real browser: Debian's chromium via Playwright.

The app is the worker's own (create_app, served by uvicorn on 127.0.0.1); behind it, a real
Service over both calendar emulators with a few meetings already seen, asked about and decided,
so every page has something to show. The `sandbox` fixture and `Running` are the end-to-end
tests', and so is `Site`, which serves the app in a thread.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from integrations.sandbox.server import free_port
from tests.end_to_end import conftest as end_to_end
from tests.end_to_end.conftest import Running, book_google, book_outlook, soon
from tests.end_to_end.serving import Site

sandbox = end_to_end.sandbox  # the end-to-end tests' fixture: both emulators and a mail sink

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD_ENV = "ASSISTANT_ADMIN_PASSWORD"
PASSWORD = "correct horse battery staple"
HOSTILE_TITLE = '<script>alert("owned")</script> Pitch to Northwind <b>now</b> & more'
DECIDED_TITLE = "Negotiation with Northwind"
HTTP_TIMEOUT = 10


@dataclass
class AdminSite:
    """The served app, its service and its address."""

    site: Site
    running: Running

    @property
    def url(self) -> str:
        return self.site.url

    @property
    def service(self):
        return self.running.service


@pytest.fixture(params=["sqlite"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'assistant.sqlite3'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture()
def running(sandbox, database_url, monkeypatch) -> Iterator[Running]:
    """A service that has seen a question asked (Alice, a hostile title) and a decision (Bob)."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    service = Running(sandbox, database_url)
    try:
        # Guests from two companies on a video call: few rows lean in person, so it is asked.
        book_google(sandbox, HOSTILE_TITLE, start=soon(days=5),
                    guests=("erin@northwind.example", "li@globex.example"),
                    location="https://meet.google.com/abc-defg-hij")
        in_three_hours = (datetime.now(UTC) + timedelta(hours=3)).replace(second=0,
                                                                          microsecond=0)
        book_outlook(sandbox, DECIDED_TITLE, start=in_three_hours)  # too close to ask: decided
        service.service.reconcile_calendars()
        service.service.sync()
        service.service.deliver()
        yield service
    finally:
        service.close()


@pytest.fixture()
def admin_site(running) -> Iterator[AdminSite]:
    site = Site(running, free_port()).start()
    yield AdminSite(site, running)
    site.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless; a missing one fails (tests/run.py installs it), never skips."""
    if not CHROMIUM.exists():
        pytest.fail(f"Debian's chromium is not installed ({CHROMIUM} is missing): run "
                    "`python3 tests/run.py`, which installs it, or `apt-get install chromium`")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox"] if os.geteuid() == 0 else [])  # chromium refuses root otherwise
        yield launched
        launched.close()


@pytest.fixture()
def context(browser, admin_site) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=admin_site.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(5000)
    yield context
    context.close()


@pytest.fixture()
def page(context) -> Page:
    return context.new_page()


def log_in(page: Page, password: str = PASSWORD) -> None:
    """As an admin does: open /admin/, land on the login page, type the password."""
    page.goto("/admin/")
    assert page.url.endswith("/admin/login"), page.url
    page.fill("#password", password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def http_login(url: str, password: str = PASSWORD) -> requests.Session:
    """A logged-in requests session, as a script would log in."""
    client = requests.Session()
    form = client.get(f"{url}/admin/login", timeout=HTTP_TIMEOUT)
    answer = client.post(f"{url}/admin/login", data={"csrf": csrf_of(form.text),
                                                     "password": password},
                         allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert answer.status_code == 303, answer.text
    return client
