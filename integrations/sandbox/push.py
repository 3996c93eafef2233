"""Deliver emulated push notifications: real HTTP POSTs, off the request thread, retried.

Providers notify asynchronously (Google may even send a channel's first message before the
watch call has returned) and retry a failing receiver with backoff; so does this.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    url: str
    headers: dict[str, str]
    body: bytes = b""
    status: int | None = None  # the receiver's answer; None while not delivered


class Notifier:
    """A background sender; `delivered` lists what reached a receiver, in order."""

    def __init__(self, attempts: int = 3, backoff_seconds: float = 0.2) -> None:
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.delivered: list[Delivery] = []
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="push-notifier", daemon=True)
        self._thread.start()

    def send(self, url: str, headers: dict[str, str], body: bytes = b"") -> None:
        self._queue.put(Delivery(url, headers, body))

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Block until everything queued so far was delivered or given up on."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self._queue.put(None)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._deliver(item)
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def _deliver(self, item: Delivery) -> None:
        for attempt in range(self.attempts):
            status = _post(item)
            if status is not None and status < 500:
                self.delivered.append(Delivery(item.url, item.headers, item.body, status))
                return
            time.sleep(self.backoff_seconds * 2**attempt)
        log.warning("gave up notifying %s", item.url)


def _post(item: Delivery) -> int | None:
    request = urllib.request.Request(item.url, data=item.body, headers=item.headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None
