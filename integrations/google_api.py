"""The Calendar API client: one discovery-built service, per-thread connections, typed errors.

google-api-python-client builds requests from its bundled discovery document, so paths and
parameters are checked against Google's own description of the API. We build the service once
(building costs milliseconds, too much per user at ten thousand users), set each request's
Authorization from the TokenSource, and send it over a keep-alive connection owned by the
calling thread (httplib2 connections are not thread-safe). Batches go to /batch/calendar/v3,
whose URL the library does not derive from api_endpoint by itself, in the format that
integrations.google_batch writes and reads.

Calls that read the user's own settings (settings.get, users/me) are signed with a second
TokenSource, whose tokens carry only the settings scope (see google_auth); without one they are
refused as PermissionDenied before anything is sent.

HTTP statuses become the assistant's error tree once, here, after Google's error guide
(https://developers.google.com/calendar/api/guides/errors): 403 rate-limit reasons and 429 are
RateLimited, 5xx and dropped connections ProviderUnavailable, 410 fullSyncRequired
CursorExpired, 412 Conflict; a 401 refreshes the token once before it counts as AuthFailed.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httplib2
from googleapiclient.discovery import Resource, build
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest

from assistant.errors import (
    AuthFailed,
    Conflict,
    CursorExpired,
    NotFound,
    PermissionDenied,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
)
from assistant.redaction import without_tokens
from assistant.retry import RetryPolicy, retry_after_seconds
from integrations import google_batch
from integrations.google_auth import TokenSource

GOOGLE_ROOT = "https://www.googleapis.com/"
_RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}
_TRANSPORT_ERRORS = (httplib2.HttpLib2Error, http.client.HTTPException, OSError)


@dataclass(frozen=True)
class Call:
    """One API call for one user; `build` makes the request from the service."""

    user: str
    build: Callable[[Collections], HttpRequest]
    event_id: str = ""


@dataclass(frozen=True)
class Collections:
    """The API's collections, built once: each `service.events()` costs a millisecond."""

    events: Resource
    channels: Resource
    settings: Resource


class GoogleApi:
    def __init__(
        self,
        tokens: TokenSource,
        *,
        settings_tokens: TokenSource | None = None,
        root_url: str | None = None,
        retry: RetryPolicy = RetryPolicy(),
        timeout_seconds: float = 30.0,
    ) -> None:
        root = (root_url or GOOGLE_ROOT).rstrip("/") + "/"
        self.tokens = tokens
        self.settings_tokens = settings_tokens  # tokens with the settings scope, if any
        self.retry = retry
        self.batch_uri = root + "batch/calendar/v3"
        self.timeout_seconds = timeout_seconds  # for an answer, each request
        self._local = threading.local()
        self._connections: list[httplib2.Http] = []  # every thread's, to close them all
        self._connections_lock = threading.Lock()
        service = build(
            "calendar", "v3", http=httplib2.Http(), static_discovery=True, cache_discovery=False,
            client_options={"api_endpoint": root + "calendar/v3/"},
        )
        self.collections = Collections(service.events(), service.channels(), service.settings())

    def execute(self, call: Call) -> Any:
        """The call's JSON response, retried while transient; a ProviderError otherwise."""
        return self.retry.call(lambda: self._execute_once(call), describe=_describe(call))

    def execute_settings(self, call: Call) -> Any:
        """execute() signed with the call's user's settings-scoped token.

        PermissionDenied at once when this sign-in has no such tokens; AuthFailed when Google
        will not issue one (the scope not delegated or consented to).
        """
        tokens = self.settings_tokens
        if tokens is None:
            raise PermissionDenied("this Google sign-in cannot read a user's own settings",
                                   calendar=call.user)
        return self.retry.call(lambda: self._execute_once(call, tokens=tokens),
                               describe=_describe(call))

    def execute_batch(self, calls: Sequence[Call]) -> list[Any | ProviderError]:
        """All calls in one HTTP round trip; per call, its JSON response or its error.

        The round trip itself is retried while transient; failures of single calls are
        returned for the caller to retry in a later batch, together with other work.
        A call refused with 401 gets a fresh token and one more try within this batch.
        """
        results: list[Any | ProviderError] = self.retry.call(
            lambda: self._batch_once(calls), describe=f"batch of {len(calls)} calls"
        )
        stale = {i: r for i, r in enumerate(results) if isinstance(r, _Unauthorized)}
        if stale:
            for i, refused in stale.items():
                self.tokens.refresh(calls[i].user, refused.authorization)
            retried = self.retry.call(lambda: self._batch_once([calls[i] for i in stale]))
            for i, result in zip(stale, retried, strict=True):
                results[i] = _final(result)
        return results

    def _execute_once(self, call: Call, refreshed: bool = False,
                      tokens: TokenSource | None = None) -> Any:
        tokens = tokens or self.tokens
        authorization = tokens.authorization(call.user)
        request = self._request(call, authorization)
        try:
            return _whole(request.execute(http=self._http()), call)
        except HttpError as err:
            if err.status_code == 401 and not refreshed:
                tokens.refresh(call.user, authorization)
                return self._execute_once(call, refreshed=True, tokens=tokens)
            raise error_from(err, call) from err
        except _TRANSPORT_ERRORS as err:
            self._reset_http()
            raise ProviderUnavailable(f"connection to Google failed: {without_tokens(repr(err))}",
                                      calendar=call.user, event_id=call.event_id) from err

    def _batch_once(self, calls: Sequence[Call]) -> list[Any | ProviderError]:
        results: list[Any | ProviderError] = [None] * len(calls)
        signed = self.tokens.authorizations([call.user for call in calls])
        sent: list[tuple[int, str, HttpRequest]] = []  # (call's index, its header, request)
        for i, (call, authorization) in enumerate(zip(calls, signed, strict=True)):
            if isinstance(authorization, ProviderError):  # this user cannot sign in: the
                results[i] = authorization  # others still can
            else:
                sent.append((i, authorization, self._request(call, authorization)))
        if not sent:
            return results
        try:
            response, content, answers = google_batch.send(
                self._http(), self.batch_uri, [request for _, _, request in sent])
        except _TRANSPORT_ERRORS as err:
            self._reset_http()
            failure = without_tokens(repr(err))
            raise ProviderUnavailable(f"batch to Google failed: {failure}") from err
        except google_batch.MalformedBatch as err:
            raise ProviderUnavailable(f"Google's answer to a batch was unreadable: {err}") from err
        if response.status >= 300:
            raise error_from(HttpError(response, content, uri=self.batch_uri))
        for (i, authorization, request), answer in zip(sent, answers, strict=True):
            results[i] = _result(calls[i], authorization, request, answer)
        return results

    def _request(self, call: Call, authorization: str) -> HttpRequest:
        request = call.build(self.collections)
        request.headers["authorization"] = authorization
        return request

    def close(self) -> None:
        """Close every kept-alive connection, whichever thread opened it."""
        with self._connections_lock:
            for connections in self._connections:
                connections.close()
            self._connections.clear()
        self.tokens.close()
        if self.settings_tokens is not None:
            self.settings_tokens.close()

    def _http(self) -> httplib2.Http:
        if getattr(self._local, "http", None) is None:
            self._local.http = httplib2.Http(timeout=self.timeout_seconds)
            with self._connections_lock:
                self._connections.append(self._local.http)
        return self._local.http

    def _reset_http(self) -> None:
        """Drop this thread's connections: after a broken one, start clean."""
        if getattr(self._local, "http", None) is not None:
            self._local.http.close()
        self._local.http = None


@dataclass
class _Unauthorized:
    authorization: str  # the header that was refused, so only a stale token is refreshed
    error: ProviderError


def _result(call: Call, authorization: str, request: HttpRequest,
            answer: google_batch.Answer | None) -> Any | ProviderError | _Unauthorized:
    """One call's share of a batch: its JSON, its error, or a 401 to refresh and resend."""
    if answer is None:
        return ProviderUnavailable("Google's answer to a batch left this call out",
                                   calendar=call.user, event_id=call.event_id)
    if answer.response.status < 300:
        try:
            return _whole(request.postproc(answer.response, answer.content), call)
        except ProviderUnavailable as broken:
            return broken
    err = error_from(HttpError(answer.response, answer.content, uri=request.uri), call)
    return _Unauthorized(authorization, err) if answer.response.status == 401 else err


def _whole(result: Any, call: Call) -> Any:
    """A successful call's JSON, checked to be whole. google-api-python-client's JsonModel
    hands back the text itself when it is not JSON (an answer cut off on the way): that is
    worth another try, where taken as an event it would crash the reader. An empty text is
    the answer of a call that has none (events.delete: 204, through the library's RawModel)."""
    if isinstance(result, str | bytes) and result:
        raise ProviderUnavailable("Google answered with broken JSON", calendar=call.user,
                                  event_id=call.event_id)
    return result


def _final(result: Any) -> Any:
    return result.error if isinstance(result, _Unauthorized) else result


def error_from(err: HttpError, call: Call | None = None) -> ProviderError:
    """The assistant's error for a Google HTTP error."""
    status, reason = err.status_code, _reason(err)
    where = {"calendar": call.user, "event_id": call.event_id} if call else {}
    message = f"Google answered {status} {reason}: {err.reason}".rstrip(": ")
    if status == 429 or (status == 403 and reason in _RATE_LIMIT_REASONS):
        return RateLimited(message, retry_after=_retry_after(err), **where)
    if status >= 500:
        return ProviderUnavailable(message, retry_after=_retry_after(err), **where)
    if status == 401:
        return AuthFailed(message, **where)
    if status == 403:
        return PermissionDenied(message, **where)
    if status == 404 or (status == 410 and reason == "deleted"):
        return NotFound(message, **where)
    if status == 410:
        return CursorExpired(message, **where)
    if status == 412:
        return Conflict(message, **where)
    return ProviderRejected(message, **where)


def _reason(err: HttpError) -> str:
    try:
        errors = json.loads(err.content)["error"]["errors"]
        return str(errors[0]["reason"])
    except (ValueError, KeyError, IndexError, TypeError):
        return ""


def _retry_after(err: HttpError) -> float | None:
    return retry_after_seconds(err.resp.get("retry-after") if err.resp is not None else None)


def _describe(call: Call) -> str:
    return f"Google call for {call.user}" + (f" event {call.event_id}" if call.event_id else "")
