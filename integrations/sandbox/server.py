"""The HTTP plumbing every emulator shares: a threaded localhost server, routing, faults, counts.

Emulators answer real HTTP on 127.0.0.1 (a free port), so the real client libraries run
unchanged against them. Keep-alive is on, as with the real services, because connection reuse
is part of what the adapters must get right. Faults and latency are knobs, seeded, so a test
that injects them is repeatable.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import re
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from integrations.sandbox.push import Notifier

log = logging.getLogger(__name__)

DROP = "drop"  # close the connection without an answer, before doing anything
DROP_AFTER = "drop_after"  # do the work, then close the connection without an answer
# Not among the default kinds, for the tests that ask: a body cut off mid-JSON after the work
# was done (a proxy or a provider having a bad day), and an answer that comes only after
# Faults.hang_seconds, when a client with a shorter timeout has given up.
TRUNCATED = "truncated"
HANG = "hang"
# These two befall a whole HTTP exchange (a batch's as one), the others each API call in it.
_EXCHANGE_KINDS = (TRUNCATED, HANG)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]  # see headers_of: names are matched case-insensitively
    body: bytes = b""

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    # Compact: json's C encoder is used only without indent, and the emulators' CPU is the
    # benchmark's too (the clients read either alike).
    body = json.dumps(payload).encode()
    content_type = {"Content-Type": "application/json; charset=UTF-8"}
    return Response(status, body, {**content_type, **(headers or {})})


class HttpProblem(Exception):
    """Raised by a handler to answer with an error response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


@dataclass
class Faults:
    """Injected trouble: a share of requests answered with an error or dropped, and latency.

    `kinds` are HTTP statuses as strings ("429", "500", "503"), DROP, DROP_AFTER, TRUNCATED
    or HANG; each emulator decides what body an injected status carries, in its provider's
    shape.
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = ("429", "500", "503", DROP, DROP_AFTER)
    latency_seconds: float = 0.0
    hang_seconds: float = 0.0  # how long a HANG waits before answering
    seed: int = 0
    _random: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def pick(self) -> str | None:
        """The fault to inject into the next API call, or None."""
        return self._pick([kind for kind in self.kinds if kind not in _EXCHANGE_KINDS])

    def touch_exchanges(self) -> bool:
        """True when some fault kind befalls whole exchanges, at a rate above nothing."""
        return self.rate > 0 and any(kind in _EXCHANGE_KINDS for kind in self.kinds)

    def pick_for_exchange(self) -> str | None:
        """The fault to inject into the next HTTP exchange as a whole (TRUNCATED, HANG)."""
        return self._pick([kind for kind in self.kinds if kind in _EXCHANGE_KINDS])

    def _pick(self, kinds: list[str]) -> str | None:
        if self.rate <= 0 or not kinds:
            return None
        with self._lock:
            if self._random.random() >= self.rate:
                return None
            return self._random.choice(kinds)


Handler = Callable[[Request, re.Match[str]], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    faults: bool = True  # False for endpoints of another service, e.g. a sign-in server

    @functools.cached_property
    def name(self) -> str:
        """The route as a person writes it: "GET /v1.0/users/{user}/events/{event}"."""
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", self.pattern.pattern.removesuffix(r"\Z"))
        path = re.sub(r"\(\?:[^)]*\)", "{…}", path)
        return f"{self.method} {path.replace(chr(92), '')}"


class SandboxServer:
    """A provider emulator's HTTP server; subclasses add routes and provider-shaped errors."""

    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.notifier = Notifier()  # push notifications the emulator sends its clients
        self.routes: list[Route] = []
        self.round_trips = 0  # HTTP requests received; a batch counts once
        self.calls: Counter[str] = Counter()  # API calls by Route.name, batch parts included
        self.injected: Counter[str] = Counter()  # faults injected, by kind
        self.refused: Counter[int] = Counter()  # errors the API itself answered, by status
        # Event writes that clients made through the API, by (calendar, event id): a person's
        # edits through the "acting as a person" methods are not counted.
        self.api_writes: Counter[tuple[str, str]] = Counter()
        # A test's person who acts while a client's write is on its way: called with the
        # calendar and event id of each API write of an event, before its If-Match is checked.
        self.before_write: Callable[[str, str], None] | None = None
        self._count_lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> SandboxServer:
        self._httpd = _Listener(("127.0.0.1", 0), _handler_class(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.notifier.close()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL, ending in '/'."""
        if self._httpd is None:
            raise RuntimeError("the emulator is not running")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/"

    def about_to_write(self, calendar: str, event_id: str) -> None:
        if self.before_write is not None:
            self.before_write(calendar, event_id)

    def count_write(self, calendar: str, event_id: str) -> None:
        with self._count_lock:
            self.api_writes[(calendar, event_id)] += 1

    def reset_counts(self) -> None:
        with self._count_lock:
            self.api_writes.clear()
            self.round_trips = 0
            self.calls.clear()
            self.injected.clear()
            self.refused.clear()

    # -- request handling --------------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Handler, *, faults: bool = True) -> None:
        self.routes.append(Route(method, re.compile(pattern + r"\Z"), handler, faults))

    def serve(self, request: Request) -> Response | None:
        """One HTTP exchange: dispatch, inside the exchange's own faults if one is due."""
        if not self.faults.touch_exchanges():  # the usual case: no second walk of the routes
            return self.dispatch(request)
        route = next((route for route in self.routes if route.method == request.method
                      and route.pattern.match(request.path)), None)
        fault = self.faults.pick_for_exchange() if route and route.faults else None
        if fault is None:
            return self.dispatch(request)
        with self._count_lock:
            self.injected[fault] += 1
        if fault == HANG:
            time.sleep(self.faults.hang_seconds)
        response = self.dispatch(request)
        if fault == TRUNCATED and response is not None:  # the work done, the answer cut off
            return Response(200, response.body[:len(response.body) // 2],
                            {**response.headers, "Content-Type": "application/json"})
        return response

    def dispatch(self, request: Request) -> Response | None:
        """The response to one API call, faults included; None means drop the connection."""
        for route in self.routes:
            match = route.pattern.match(request.path)
            if match and route.method == request.method:
                fault = self.faults.pick() if route.faults else None
                with self._count_lock:
                    self.calls[route.name] += 1
                    if fault is not None:
                        self.injected[fault] += 1
                if fault == DROP:
                    return None
                if fault not in (None, DROP_AFTER):
                    return self.fault_response(int(fault))
                try:
                    response = route.handler(request, match)
                except HttpProblem as problem:
                    response = problem.response
                    with self._count_lock:
                        self.refused[response.status] += 1
                except Exception:  # an emulator bug: answer 500 and say so loudly
                    log.exception("%s failed on %s %s", type(self).__name__, request.method,
                                  request.path)
                    response = json_response(500, {"error": {"code": "EmulatorBug"}})
                return None if fault == DROP_AFTER else response
        return self.not_found(request)

    def fault_response(self, status: int) -> Response:
        """An injected error; subclasses give it their provider's body and headers."""
        return json_response(status, {"error": {"code": status}})

    def not_found(self, request: Request) -> Response:
        return json_response(404, {"error": {"code": 404, "message": "Not Found"}})

    def _count_round_trip(self) -> None:
        with self._count_lock:
            self.round_trips += 1


class _Listener(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's backlog is 5: more connections opened at once are dropped, and their
    # SYN resent a second later. Real providers take thousands at once.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up waiting (its timeout, or a killed worker) has closed the
        # connection before the answer was written: that is the client's choice, not an error.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


def _handler_class(server: SandboxServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the real services
        disable_nagle_algorithm = True  # headers and body go out in separate writes

        def _serve(self) -> None:
            server._count_round_trip()
            if server.faults.latency_seconds:
                time.sleep(server.faults.latency_seconds)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            request = Request(
                self.command, parts.path, parse_qs(parts.query), headers_of(self.headers), body
            )
            response = server.serve(request)
            if response is None:
                self.close_connection = True
                return
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, type(server).__name__, *args)

    return _Handler


class _Headers(Mapping[str, str]):
    """Request headers with case-insensitive lookup, whatever produced them."""

    def __init__(self, source: Message | Mapping[str, str]) -> None:
        self._by_name = {name.lower(): value for name, value in source.items()}

    def __getitem__(self, name: str) -> str:
        return self._by_name[name.lower()]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)


def headers_of(source: Message | Mapping[str, str]) -> Mapping[str, str]:
    return _Headers(source)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, for servers that cannot bind port 0 and report back
    (aiosmtpd connects to itself to check it started; Dovecot and PostgreSQL take a number)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
