"""The worker's web app served for real by uvicorn on 127.0.0.1, and what tests read of it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any

import uvicorn

from assistant.web import create_app
from integrations.sandbox.server import free_port
from tests.end_to_end.conftest import Running, wait_until

HTTP_TIMEOUT = 10  # seconds, for every request a test makes
HOUR = 3600  # the sync interval: nothing but a notification makes a calendar due sooner


@contextmanager
def served(sandbox: Any, database_url: str, **service: Any) -> Iterator[Site]:
    """A service over the sandbox (these service settings added) and its web app, served."""
    port = free_port()
    sections = web_sections(port)
    sections["service"] |= service
    running = Running(sandbox, database_url, **sections)
    site = Site(running, port).start()
    try:
        yield site
    finally:
        site.stop()
        running.close()


def web_sections(port: int) -> dict[str, dict[str, Any]]:
    url = f"http://127.0.0.1:{port}"
    return {"service": {"public_url": url, "listen": f"127.0.0.1:{port}",
                        "sync_interval_seconds": HOUR},
            "mail": {"public_url": url}}


class Site:
    """A service over the sandbox, its web app served by uvicorn on 127.0.0.1 in a thread.

    No jobs run: the test drives the service. `wakes` counts the app asking for a sync now.
    """

    def __init__(self, running: Running, port: int) -> None:
        self.service = running.service
        self.url = f"http://127.0.0.1:{port}"
        self.wakes = 0
        app = create_app(self.service, running.built.push_readers, wake_sync=self._wake)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                                    log_level="warning", log_config=None))
        self._thread = threading.Thread(target=self.server.run, name="web", daemon=True)

    def start(self) -> Site:
        self._thread.start()
        wait_until(lambda: self.server.started or not self._thread.is_alive(), "uvicorn")
        assert self.server.started, "uvicorn did not start"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "uvicorn did not stop"

    def _wake(self) -> None:
        self.wakes += 1


class _Links(HTMLParser):
    """The (text, href) of every link in an HTML part."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href, self._text = dict(attrs).get("href") or "", []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append(("".join(self._text).strip(), self._href))
            self._href = None


def answer_links(message: EmailMessage) -> dict[str, str]:
    """The one-click links of a question email's HTML part, by their text ("virtual", ...)."""
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None, "the question email has no HTML part"
    parser = _Links()
    parser.feed(html_part.get_content())
    return {text: href for text, href in parser.links if "/answer/" in href}


def tampered(link: str) -> str:
    """The same link with one character of its signed token changed."""
    head, token = link.rsplit("/", 1)
    middle = len(token) // 2
    swapped = "B" if token[middle] == "A" else "A"
    return f"{head}/{token[:middle]}{swapped}{token[middle + 1:]}"


