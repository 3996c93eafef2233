"""The admin page, under /admin of the worker's web app: what the assistant watches and did.

- GET /admin/: the calendars and their health (state, last sync, lag, meetings in flight,
  last error), each with a Pause or Resume button;
- GET /admin/meetings: conversations still under way; /admin/recommendations: the latest
  decisions with their reasons; /admin/audit?page=N: the audit log, newest first;
  /admin/reports: the team report's charts (assistant.team_report, .report_charts);
- POST /admin/calendars/pause and /resume, POST /admin/logout;
- GET/POST /admin/login: the only URL open without a session.
Login, the session cookie and CSRF tokens are assistant.admin_session's; here, `_AdminDoor`
sends every request without a logged-in session to the login page (GET) or refuses it (403)
before any route is reached, and every POST passes admin_session.posted_form (CSRF token,
same-site, size) before its handler runs. Pages are Jinja2 templates, every value escaped
(meeting titles are whatever a stranger typed), under a Content-Security-Policy that allows
no script at all. The store is synchronous: its work runs on Starlette's thread pool.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any

import jinja2
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant import admin_views, answer_memory, resources, team_report
from assistant.admin_session import (
    AdminGate,
    AdminSession,
    Closed,
    Refusal,
    open_gate,
    posted_form,
)
from assistant.calendar_admin import PROVIDER_NAMES, CalendarAdmin
from assistant.errors import InputError
from assistant.models import Provider
from assistant.redaction import redacted
from assistant.service import Service
from assistant.store.tables import AuditEntry
from assistant.time_words import ago, span

log = logging.getLogger(__name__)
SECURITY_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
Handler = Callable[[Request, AdminSession, dict[str, str]], Awaitable[Response]]


def admin_mount(service: Service) -> Mount:
    """/admin: the admin page, or, without a password configured, a page saying how to open it."""
    templates = _templates()
    gate = open_gate(service.config)
    if isinstance(gate, Closed):
        log.info("%s", gate.why)
        return Mount("/admin", app=_closed(templates, gate),
                     middleware=[Middleware(_SafeHeaders)])
    pages = _AdminPages(service, gate, templates)
    return Mount("/admin", routes=pages.routes(),
                 middleware=[Middleware(_SafeHeaders), Middleware(_AdminDoor, gate=gate)])


class _AdminPages:
    def __init__(self, service: Service, gate: AdminGate, templates: jinja2.Environment) -> None:
        self.service, self.gate, self.templates = service, gate, templates

    def routes(self) -> list[Route]:
        return [
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.log_in, methods=["POST"]),
            Route("/logout", self._action(self.log_out), methods=["POST"]),
            Route("/", self.overview, methods=["GET"]),
            Route("/meetings", self.meetings, methods=["GET"]),
            Route("/recommendations", self.recommendations, methods=["GET"]),
            Route("/audit", self.audit, methods=["GET"]),
            Route("/calendars/pause", self._action(self.pause), methods=["POST"]),
            Route("/calendars/resume", self._action(self.resume), methods=["POST"]),
            Route("/reports", self.report, methods=["GET"]),
            Route("/remembered", self.remembered, methods=["GET"]),
            Route("/remembered/forget", self._action(self.forget), methods=["POST"]),
        ]

    # -- login -----------------------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        session = _session(request)
        if session.admin:
            return RedirectResponse(_root(request) + "/", status_code=303)
        return self._login_page(request, session, status=200)

    async def log_in(self, request: Request) -> Response:
        session = _session(request)
        form = await posted_form(request, session)
        if isinstance(form, Refusal):
            return self._refusal(request, form.status, form.why)
        client = request.client.host if request.client else "unknown"
        wait = self.gate.throttle.attempt(client)
        if wait:
            log.warning("admin login refused for %s: too many attempts", client)
            minutes = max(1, round(wait / 60))
            page = self._login_page(request, session, status=429, error=(
                f"Too many attempts. Try again in {minutes} minute{'s' * (minutes != 1)}."))
            page.headers["retry-after"] = str(int(wait))
            return page
        if not self.gate.password_matches(form.get("password", "")):
            await asyncio.sleep(self.gate.failure_delay)
            log.warning("admin login with a wrong password from %s", client)
            return self._login_page(request, session, status=401,
                                    error="That password is not right.")
        self.gate.throttle.succeeded(client)
        log.info("admin logged in from %s", client)
        await run_in_threadpool(self._audit, "admin_login", f"logged in from {client}")
        response = RedirectResponse(_root(request) + "/", status_code=303)
        self.gate.write(response, self.gate.new_session(admin=True))
        return response

    async def log_out(self, request: Request, session: AdminSession,
                      form: dict[str, str]) -> Response:
        self.gate.revoke(session)
        log.info("admin logged out")
        await run_in_threadpool(self._audit, "admin_logout", "logged out")
        response = RedirectResponse(_root(request) + "/login", status_code=303)
        self.gate.write(response, self.gate.new_session(flash="You are logged out."))
        return response

    def _login_page(self, request: Request, session: AdminSession, *, status: int,
                    error: str = "") -> HTMLResponse:
        shown = self.gate.with_flash(session, "")
        response = self._render(request, "login.html.j2", shown, status=status,
                                error=error, notice=session.flash)
        self.gate.write(response, shown)  # the pre-session whose token the form carries
        return response

    # -- pages -----------------------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        now = self.service.clock()
        view = await self._read(admin_views.overview, now)
        return self._page(request, "overview.html.j2", view=view, now=now)

    async def meetings(self, request: Request) -> Response:
        rows = await self._read(admin_views.meetings_in_flight)
        return self._page(request, "meetings.html.j2", meetings=rows,
                          limit=admin_views.MEETINGS_SHOWN, now=self.service.clock())

    async def recommendations(self, request: Request) -> Response:
        rows = await self._read(admin_views.recent_recommendations)
        return self._page(request, "recommendations.html.j2", recommendations=rows,
                          limit=admin_views.RECOMMENDATIONS_SHOWN)

    async def audit(self, request: Request) -> Response:
        wanted = request.query_params.get("page", "1")
        page = await self._read(admin_views.audit_page, int(wanted) if wanted.isdigit() else 1)
        return self._page(request, "audit.html.j2", audit=page)

    async def report(self, request: Request) -> Response:
        now = self.service.clock()
        since = _day(request.query_params.get("since", "")) or team_report.default_since(now)
        teams = request.query_params.get("teams", "").replace(",", " ").split()[:20]

        def gather(session: Any) -> team_report.TeamReport:
            return team_report.gather(session, since=since, teams=teams, now=now,
                                      checklist=self.service.checklist)

        report = await self._read(gather)
        figures = await run_in_threadpool(_figures, report)  # outside the transaction
        return self._page(request, "reports.html.j2", figures=figures, report=report,
                          since=since, teams=" ".join(teams),
                          definitions=team_report.DEFINITIONS)

    async def remembered(self, request: Request) -> Response:
        answers = await self._read(answer_memory.remembered, self.service.checklist,
                                   self.service.config.policy.remember_answers_days)
        return self._page(request, "remembered.html.j2", remembered=answers,
                          now=self.service.clock())

    async def forget(self, request: Request, session: AdminSession,
                     form: dict[str, str]) -> Response:
        key = form.get("row", "").strip() or None
        try:
            domain = answer_memory.customer_domain(form.get("domain", ""))
        except InputError:
            return self._refusal(request, 400, "That is not a customer domain.")
        if key is not None and key not in {row.key for row in self.service.checklist}:
            return self._refusal(request, 400, "That is not a checklist row.")

        def forgetting() -> int:
            with self.service.store.transaction() as store_session:
                return answer_memory.forget(store_session, domain, key, actor="admin page",
                                            now=self.service.clock())

        forgotten = await run_in_threadpool(forgetting)
        words = (f"Forgot {forgotten} answer{'s' * (forgotten != 1)} about {domain}: its next "
                 "meeting asks again." if forgotten else f"Nothing was remembered about {domain}.")
        response = RedirectResponse(_root(request) + "/remembered", status_code=303)
        self.gate.write(response, self.gate.with_flash(session, words))
        return response

    # -- calendar actions ------------------------------------------------------------------------

    async def pause(self, request: Request, session: AdminSession,
                    form: dict[str, str]) -> Response:
        return await self._calendar_action(request, session, form, "pause")

    async def resume(self, request: Request, session: AdminSession,
                     form: dict[str, str]) -> Response:
        return await self._calendar_action(request, session, form, "resume")

    async def _calendar_action(self, request: Request, session: AdminSession,
                               form: dict[str, str], verb: str) -> Response:
        address = form.get("address", "").strip()
        try:
            provider = Provider(form.get("provider", ""))
        except ValueError:
            return self._refusal(request, 400, "That is not a provider.")
        if not address or len(address) > 320:
            return self._refusal(request, 400, "That is not a calendar address.")
        service = self.service
        admin = CalendarAdmin(service.store, service.config, clock=service.clock,
                              ports=lambda: service.outside.calendars, actor="admin page")
        changes = await run_in_threadpool(getattr(admin, verb), provider, [address])
        log.info("admin page: %s %s calendar %s", verb, provider.value, redacted(address))
        words = "; ".join(f"{PROVIDER_NAMES[provider]} {change.address}: {change.outcome}"
                          for change in changes)
        response = RedirectResponse(_root(request) + "/", status_code=303)
        self.gate.write(response, self.gate.with_flash(session, words))
        return response

    # -- plumbing --------------------------------------------------------------------------------

    def _action(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """handler, reached only by a POST with this session's CSRF token."""
        async def endpoint(request: Request) -> Response:
            session = _session(request)
            form = await posted_form(request, session)
            if isinstance(form, Refusal):
                return self._refusal(request, form.status, form.why)
            return await handler(request, session, form)
        return endpoint

    def _audit(self, action: str, detail: str) -> None:
        with self.service.store.transaction() as session:
            session.add(AuditEntry(at=self.service.clock(), action=action, detail=detail))

    async def _read(self, query: Callable[..., Any], *args: Any) -> Any:
        def run() -> Any:
            with self.service.store.reading() as session:  # never holds up the workers
                return query(session, *args)
        return await run_in_threadpool(run)

    def _page(self, request: Request, name: str, **context: Any) -> HTMLResponse:
        """A logged-in page; a message left by the last action is shown once."""
        session = _session(request)
        response = self._render(request, name, session, notice=session.flash, **context)
        if session.flash:
            self.gate.write(response, self.gate.with_flash(session, ""))
        return response

    def _render(self, request: Request, name: str, session: AdminSession, *,
                status: int = 200, **context: Any) -> HTMLResponse:
        html = self.templates.get_template(name).render(
            root=_root(request), csrf=session.csrf, admin=session.admin,
            path=request.url.path, **context)
        return HTMLResponse(html, status_code=status)

    def _refusal(self, request: Request, status: int, why: str) -> HTMLResponse:
        return _refused(self.templates, request, status, why)


class _AdminDoor:
    """ASGI middleware: without a logged-in session only /login is reached; the rest is not.

    GET and HEAD go to the login page (303); any other method is refused (403) before its
    route runs, so no handler ever sees a request that is not an admin's.
    """

    def __init__(self, app: ASGIApp, gate: AdminGate) -> None:
        self.app, self.gate = app, gate
        self.templates = _templates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        session = self.gate.read(request)
        scope["admin_session"] = session
        if session.admin or _route_path(scope) == "/login":
            await self.app(scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD"):
            response: Response = RedirectResponse(_root(request) + "/login", status_code=303)
        else:
            response = _refused(self.templates, request, 403, "Log in first.")
        await response(scope, receive, send)


class _SafeHeaders:
    """ASGI middleware: every admin response is uncached, unframed and allows no script."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_safely(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_safely if scope["type"] == "http" else send)


def _figures(report: team_report.TeamReport) -> list[tuple[str, Markup]]:
    from assistant import report_charts  # matplotlib: loaded when the page is first asked for

    # The SVGs are drawn by matplotlib from our own counts (report_charts escapes the alt text
    # it puts in them): marked safe on purpose, to be embedded as pictures rather than text.
    return [(chart.title, Markup(chart.svg)) for chart in report_charts.charts(report)]


def _closed(templates: jinja2.Environment, closed: Closed) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        html = templates.get_template("closed.html.j2").render(why=closed.why)
        await HTMLResponse(html, status_code=404)(scope, receive, send)
    return app


def _refused(templates: jinja2.Environment, request: Request, status: int,
             why: str) -> HTMLResponse:
    html = templates.get_template("refused.html.j2").render(root=_root(request), why=why,
                                                            status=status)
    return HTMLResponse(html, status_code=status)


def _session(request: Request) -> AdminSession:
    session = request.scope["admin_session"]
    assert isinstance(session, AdminSession)
    return session


def _root(request: Request) -> str:
    """Where the admin page is mounted (/admin)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _route_path(scope: Scope) -> str:
    path, root = str(scope.get("path", "")), str(scope.get("root_path", ""))
    return path[len(root):] if path.startswith(root) else path


@functools.cache
def _templates() -> jinja2.Environment:
    """templates/admin/, every value escaped (autoescape on for every file)."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(resources.templates_dir() / "admin"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters.update(when=_when, short=_short, ago=ago, span=span, words=_words,
                               provider=_provider_name)
    return environment


def _when(moment: datetime | date | None) -> str:
    if moment is None:
        return "–"
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).strftime("%a %d %b %Y, %H:%M UTC")
    return moment.strftime("%a %d %b %Y")


def _short(moment: datetime | None) -> str:
    """A time in a table, whose page says times are UTC."""
    return moment.astimezone(UTC).strftime("%d %b %Y, %H:%M") if moment else "–"


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip()) if text.strip() else None
    except ValueError:
        return None


def _words(value: str) -> str:
    return str(value).replace("_", " ")


def _provider_name(value: Provider | str) -> str:
    try:
        return PROVIDER_NAMES[Provider(value)]
    except ValueError:
        return str(value)
