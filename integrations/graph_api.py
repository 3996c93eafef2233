"""Talking HTTP to Microsoft Graph: one pooled requests session, JSON batches, typed errors.

- Requests carry msal's token; a 401 gets a fresh token once before it counts as AuthFailed.
- JSON batching (https://learn.microsoft.com/en-us/graph/json-batching): POST /$batch with at
  most 20 requests, URLs relative to the version root; answers may come in any order and are
  matched by id; each carries its own status, headers (Retry-After) and body.
- Errors (https://learn.microsoft.com/en-us/graph/errors) become the assistant's tree once, here:
  429 RateLimited and 503 ProviderUnavailable with their Retry-After
  (https://learn.microsoft.com/en-us/graph/throttling), other 5xx and dropped connections
  ProviderUnavailable, 410 or a sync-state code CursorExpired, 412/409 Conflict.
The session's pool holds as many connections as the adapter runs requests at once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

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
from integrations.microsoft_auth import GraphSignIn

_SYNC_STATE_CODES = {"SyncStateNotFound", "SyncStateInvalid", "ResyncRequired", "resyncRequired"}


@dataclass(frozen=True)
class GraphRequest:
    method: str
    url: str  # relative to the version root ("/users/a/events/b"), or a nextLink/deltaLink
    mailbox: str
    event_id: str = ""
    body: Mapping[str, Any] | None = None  # sent as JSON
    headers: Mapping[str, str] = field(default_factory=dict)


class GraphApi:
    def __init__(
        self,
        sign_in: GraphSignIn,
        *,
        graph_endpoint: str,
        retry: RetryPolicy = RetryPolicy(),
        max_connections: int = 4,
        timeout_seconds: float = 30.0,
    ) -> None:
        self.sign_in = sign_in
        self.retry = retry
        self.base = graph_endpoint.rstrip("/")
        self.timeout_seconds = timeout_seconds  # for an answer, each request
        self.session = requests.Session()
        pool = HTTPAdapter(pool_connections=1, pool_maxsize=max_connections)
        self.session.mount("https://", pool)
        self.session.mount("http://", pool)

    def close(self) -> None:
        self.session.close()

    def call(self, request: GraphRequest) -> Any:
        """The JSON answer (None for an empty one), retried while transient."""
        describe = f"Graph {request.method} for {request.mailbox}"
        return self.retry.call(lambda: self._once(request), describe=describe)

    def batch(self, requests_: Sequence[GraphRequest]) -> list[Any | ProviderError]:
        """All requests in one round trip; per request, its JSON answer or its error."""
        answers = self.retry.call(lambda: self._batch_once(requests_),
                                  describe=f"Graph batch of {len(requests_)}")
        refused = [i for i, answer in enumerate(answers) if answer.status == 401]
        if refused:  # one app token serves the whole batch: refresh it once, resend those
            self.sign_in.refresh(answers[refused[0]].authorization)
            again = self.retry.call(lambda: self._batch_once([requests_[i] for i in refused]))
            for i, answer in zip(refused, again, strict=True):
                answers[i] = answer
        return [answer.result(request) for answer, request in zip(answers, requests_, strict=True)]

    def relative(self, url: str) -> str:
        """A nextLink or deltaLink as a URL relative to the version root, for a batch."""
        return url[len(self.base):] if url.startswith(self.base) else url

    def _once(self, request: GraphRequest, refreshed: bool = False) -> Any:
        authorization = self.sign_in.authorization()
        url = request.url if request.url.startswith("http") else self.base + request.url
        headers = {"Authorization": authorization, **request.headers}
        try:
            response = self.session.request(
                request.method, url, headers=headers, timeout=self.timeout_seconds,
                json=dict(request.body) if request.body is not None else None,
            )
        except requests.RequestException as err:
            raise ProviderUnavailable(f"connection to Graph failed: {without_tokens(repr(err))}",
                                      calendar=request.mailbox, event_id=request.event_id) from err
        if response.status_code == 401 and not refreshed:
            self.sign_in.refresh(authorization)
            return self._once(request, refreshed=True)
        return _answer_body(response, request)

    def _batch_once(self, requests_: Sequence[GraphRequest]) -> list[_Answer]:
        """Each request's answer, in the order given."""
        authorization = self.sign_in.authorization()
        items = []
        for i, request in enumerate(requests_):
            item: dict[str, Any] = {"id": str(i), "method": request.method,
                                    "url": self.relative(request.url)}
            headers = dict(request.headers)
            if request.body is not None:
                item["body"] = dict(request.body)
                headers["Content-Type"] = "application/json"
            if headers:
                item["headers"] = headers
            items.append(item)
        batch = GraphRequest("POST", "/$batch", "", body={"requests": items})
        try:
            response = self.session.post(self.base + "/$batch", json=batch.body,
                                         headers={"Authorization": authorization},
                                         timeout=self.timeout_seconds)
        except requests.RequestException as err:
            failure = without_tokens(repr(err))
            raise ProviderUnavailable(f"batch to Graph failed: {failure}") from err
        body = _answer_body(response, batch)
        if not isinstance(body, dict) or not isinstance(body.get("responses", []), list):
            raise ProviderUnavailable("Graph's answer to a batch was not a batch answer")
        by_id = {str(answer.get("id")): answer for answer in body.get("responses", [])
                 if isinstance(answer, dict)}
        missing = {"status": 502, "body": {"error": {"code": "MissingAnswer"}}}
        return [_Answer.of(by_id.get(str(i), missing), authorization)
                for i in range(len(requests_))]


@dataclass(frozen=True)
class _Answer:
    """One request's answer inside a batch."""

    status: int
    headers: Mapping[str, str]
    body: Any
    authorization: str  # the token it was sent with, so only a stale one is refreshed

    @classmethod
    def of(cls, item: Mapping[str, Any], authorization: str) -> _Answer:
        return cls(int(item.get("status", 502)), item.get("headers") or {}, item.get("body"),
                   authorization)

    def result(self, request: GraphRequest) -> Any | ProviderError:
        if self.status >= 400:
            return error_from(self.status, self.body, self.headers, request)
        return self.body


def error_from(status: int, body: Any, headers: Mapping[str, str],
               request: GraphRequest) -> ProviderError:
    """The assistant's error for a Graph error answer."""
    error = body.get("error", {}) if isinstance(body, dict) else {}
    code = str(error.get("code", "")) if isinstance(error, dict) else ""
    message = str(error.get("message", "")) if isinstance(error, dict) else ""
    text = f"Graph answered {status} {code}: {message}".rstrip(": ")
    where = {"calendar": request.mailbox, "event_id": request.event_id}
    retry_after = _retry_after(headers)
    if status == 429:
        return RateLimited(text, retry_after=retry_after, **where)
    if status >= 500:
        return ProviderUnavailable(text, retry_after=retry_after, **where)
    if status == 410 or code in _SYNC_STATE_CODES:
        return CursorExpired(text, **where)
    if status == 401:
        return AuthFailed(text, **where)
    if status == 403:
        return PermissionDenied(text, **where)
    if status == 404:
        return NotFound(text, **where)
    if status in (409, 412):
        return Conflict(text, **where)
    return ProviderRejected(text, **where)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    return retry_after_seconds(
        next((v for k, v in headers.items() if k.lower() == "retry-after"), None))


def _answer_body(response: requests.Response, request: GraphRequest) -> Any:
    """The JSON of a success; the error of a failure.

    A success that is not JSON was cut off or garbled on the way, so it is worth another try;
    taken as it is, an event read that way would look deleted. A failure that is not JSON (a
    proxy's error page) is described by its first words.
    """
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        if response.status_code < 400:
            raise ProviderUnavailable("Graph answered with broken JSON", calendar=request.mailbox,
                                      event_id=request.event_id) from None
        body = {"error": {"code": "NotJson",
                          "message": response.content[:200].decode(errors="replace")}}
    if response.status_code >= 400:
        raise error_from(response.status_code, body, response.headers, request)
    return body
