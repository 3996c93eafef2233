"""The worker's small web app (Starlette): webhooks, one-click answers, health and metrics.

- POST /push/google: Google's push notifications (X-Goog-* headers, no body worth reading);
- POST /push/microsoft: Graph's change and lifecycle notifications, and its validation
  handshake (echo `validationToken` as text/plain within 10 seconds,
  https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks);
- GET/POST /answer/{token}: a one-click answer; only POST changes anything: GET and HEAD (which
  Starlette answers on every GET route) only show what the link would do, so a mail scanner or
  link previewer that follows links changes nothing; the organiser confirms with POST;
- GET /healthz: the store answers; GET /metrics: Prometheus text, behind a bearer token when
  `service.metrics_token_env` is set (its labels name no person either way);
- /admin: the admin page, behind its login (assistant.admin_web).
A notification only ever makes a calendar due for a sync, so a forged one costs a sync at most,
and one without our channel's secret is refused before even that. The store is synchronous,
so every endpoint that touches it runs on Starlette's thread pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import logging
from collections.abc import Callable, Mapping

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from assistant.admin_web import admin_mount
from assistant.config import Config, secret_from_env
from assistant.models import Provider
from assistant.ports import PushNotice, PushReader
from assistant.reply_tokens import BadToken
from assistant.service import Service

log = logging.getLogger(__name__)
MAX_NOTIFICATION_BYTES = 1_000_000
# Google and Graph send a notification's body at once; a client that trickles one in only
# holds a connection open.
BODY_TIMEOUT_SECONDS = 10.0


def create_app(service: Service, push_readers: Mapping[Provider, PushReader],
               wake_sync: Callable[[], None] = lambda: None) -> Starlette:
    """The app; wake_sync asks the worker to run its sync job now (after a notification).

    ConfigError if the config names a metrics token that is not set.
    """
    metrics_token = _metrics_token(service.config)

    async def push(request: Request) -> Response:
        try:
            provider = Provider(request.path_params["provider"])
        except ValueError:
            return PlainTextResponse("not found", status_code=404)
        validation = request.query_params.get("validationToken")
        if provider is Provider.MICROSOFT and validation is not None:
            return PlainTextResponse(validation)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_NOTIFICATION_BYTES:
            return PlainTextResponse("too large", status_code=413)  # before reading any of it
        try:
            async with asyncio.timeout(BODY_TIMEOUT_SECONDS):
                body = await _body_up_to(request, MAX_NOTIFICATION_BYTES)
        except TimeoutError:
            return PlainTextResponse("the body took too long to arrive", status_code=408)
        if body is None:
            return PlainTextResponse("too large", status_code=413)
        # The store is synchronous: its work runs on Starlette's thread pool, off the loop.
        notice = await run_in_threadpool(_take_notice, service, push_readers[provider],
                                         provider, dict(request.headers), body)
        if notice.rejected:
            log.warning("%d %s notification(s) refused: unknown channel or wrong secret",
                        notice.rejected, provider.value)
        if notice.sync:
            wake_sync()
        if notice.rejected and not notice.sync:
            return PlainTextResponse("unknown channel", status_code=403)
        # Renewing a channel is a provider call: answered first (Graph wants an answer within
        # seconds), done right after, and waited for when the server shuts down.
        renewals = BackgroundTask(_renew_lost, service, notice)
        return Response(status_code=202 if provider is Provider.MICROSOFT else 200,
                        background=renewals)

    def answer(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            if request.method != "POST":
                claims = service.describe_link(token)
                return _page("Confirm your answer", f"<p>{html.escape(claims)}</p>"
                             '<form method="post"><button type="submit">Confirm</button></form>')
            return _page("Thank you", f"<p>{html.escape(service.answer_by_link(token))}</p>")
        except BadToken as err:
            return _page("This link does not work", f"<p>{html.escape(str(err))}.</p>",
                         status=400)

    def healthz(request: Request) -> Response:
        try:
            with service.store.transaction() as session:
                session.execute(text("SELECT 1"))
        except Exception:  # any failure means unhealthy; the details go to the log only
            log.exception("the health check could not reach the store")
            return JSONResponse({"status": "unhealthy", "store": "unreachable"},
                                status_code=503)
        return JSONResponse({"status": "ok", "worker": service.worker})

    def metrics(request: Request) -> Response:
        if metrics_token and not _bearer_is(request, metrics_token):
            return PlainTextResponse("a bearer token is needed", status_code=401,
                                     headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        return Response(service.metrics.text(),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    return Starlette(routes=[
        Route("/push/{provider:str}", push, methods=["POST"]),
        Route("/answer/{token:str}", answer, methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        admin_mount(service),  # /admin: the admin page (assistant.admin_web)
    ])


def _metrics_token(config: Config) -> str:
    variable = config.service.metrics_token_env
    return secret_from_env(variable, "service.metrics_token_env") if variable else ""


def _bearer_is(request: Request, token: str) -> bool:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        credentials.strip().encode(), token.encode())


async def _body_up_to(request: Request, limit: int) -> bytes | None:
    """The body, read as it streams in; None as soon as it passes limit bytes."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _take_notice(service: Service, reader: PushReader, provider: Provider,
                 headers: dict[str, str], body: bytes) -> PushNotice:
    notice = reader(headers, body, service.push.lookup(provider))
    for calendar in notice.sync:
        service.sync_soon(provider, calendar)
    return notice


def _renew_lost(service: Service, notice: PushNotice) -> None:
    for channel in (*notice.renew, *notice.recreate):
        service.push.lost(channel, renew=channel in notice.renew)
    if notice.renew or notice.recreate:
        service.push.keep_open()


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html lang=en><meta charset=utf-8>"
        f'<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><body style='font-family:sans-serif;"
        f"max-width:32em;margin:2em auto'><h1>{html.escape(title)}</h1>{body}</body></html>",
        status_code=status)
