"""A local emulator of the Google Calendar API v3, for tests, the demo and the benchmarks.

It answers real HTTP at the paths Google uses, so google-api-python-client runs unchanged with
`client_options={"api_endpoint": emulator.url}`. Covered, after Google's reference
(https://developers.google.com/calendar/api/v3/reference):
- events.list/get/insert/patch/update/delete, with ETags and If-Match (412 conditionNotMet,
  https://developers.google.com/calendar/api/guides/version-resources), sync and page tokens
  (see google_store), sendUpdates, conferenceDataVersion=1 with createRequest;
- events.watch and channels.stop, delivering push POSTs with the X-Goog-* headers
  (https://developers.google.com/calendar/api/guides/push);
- the batch endpoint /batch/calendar/v3: multipart/mixed, at most 1000 calls, each part may
  carry its own Authorization (https://developers.google.com/calendar/api/guides/batch);
- settings.get, GET /calendar/v3/users/me/settings/{setting}, for the user the token acts as
  (google_settings; https://developers.google.com/workspace/calendar/api/v3/reference/settings/get):
  the locale is per user (`add_user(..., locale=)`, `set_locale`), the time zone their calendar's;
  a token without a settings or calendar scope answers 403 insufficientPermissions. There is no
  users/{email}: the reference has only users/me, so other paths answer 404 notFound;
  settings.list and settings.watch are not emulated;
- OAuth 2.0 bearer tokens from the token endpoint in google_oauth, scope checks, and errors in
  Google's JSON shape (google_errors).
Knobs: `faults` (a seeded share of 429/500/503 answers or dropped connections, latency),
`store.expire_sync_tokens()`, `oauth.revoke_access_tokens()`, and the scopes a service account
is delegated (`service_account_key(..., scopes=)`: a token request for any other scope is
refused 401 unauthorized_client, as the Admin console's delegation list makes Google refuse
it). The methods under "acting as a person" let a test create, edit, move and cancel meetings
the way someone in Google Calendar's web UI would, change their language (`set_locale`), and
read back exactly what the adapter wrote.
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import json
import re
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from integrations.sandbox import google_errors, google_settings
from integrations.sandbox.google_errors import bad_request, google_error, injected, not_found
from integrations.sandbox.google_oauth import DELEGATED_BY_DEFAULT, OAuthServer
from integrations.sandbox.google_store import CalendarStore
from integrations.sandbox.server import (
    Faults,
    HttpProblem,
    Request,
    Response,
    SandboxServer,
    headers_of,
    json_response,
)

_API = "/calendar/v3"
_SCOPE = "https://www.googleapis.com/auth/"
READ_SCOPES = frozenset(_SCOPE + s for s in (
    "calendar", "calendar.readonly", "calendar.events", "calendar.events.readonly",
    "calendar.events.owned", "calendar.events.owned.readonly"))
WRITE_SCOPES = frozenset(
    _SCOPE + s for s in ("calendar", "calendar.events", "calendar.events.owned"))
MAX_BATCH = 1000
_BLANK_LINE = re.compile(r"\r?\n\r?\n")  # between an HTTP message's header and its body
DEFAULT_CHANNEL_TTL = 604_800  # seconds, Google's documented default


class GoogleCalendarEmulator(SandboxServer):
    def __init__(self, faults: Faults | None = None, *, require_https: bool = False) -> None:
        super().__init__(faults)
        self.store = CalendarStore()
        self.oauth = OAuthServer()
        self.require_https = require_https  # Google does; local receivers are plain HTTP
        self.channels: dict[str, dict[str, Any]] = {}
        self._channel_lock = threading.Lock()
        self.store.on_change = self._calendar_changed
        cal = rf"{_API}/calendars/(?P<cal>[^/]+)"
        self.route("GET", rf"{cal}/events", self._list)
        self.route("POST", rf"{cal}/events", self._insert)
        self.route("POST", rf"{cal}/events/watch", self._watch)
        self.route("GET", rf"{cal}/events/(?P<event>[^/]+)", self._get)
        self.route("PATCH", rf"{cal}/events/(?P<event>[^/]+)", self._patch)
        self.route("PUT", rf"{cal}/events/(?P<event>[^/]+)", self._update)
        self.route("DELETE", rf"{cal}/events/(?P<event>[^/]+)", self._delete)
        self.route("POST", rf"{_API}/channels/stop", self._stop)
        self.route("GET", rf"{_API}/users/me/settings/(?P<setting>[^/]+)", self._setting)
        self.route("POST", r"/batch/calendar/v3", self._batch)
        # Google's sign-in is another service (oauth2.googleapis.com), and google-auth retries
        # its failures with real sleeps of its own: faults are injected into the API only.
        self.route("POST", r"/token", lambda request, _: self.oauth.token(request), faults=False)
        # The consent page: a person signs in as one of the emulator's users.
        self.route("GET", r"/o/oauth2/auth",
                   lambda request, _: self.oauth.authorize(request, self.store.calendars),
                   faults=False)
        self.route("POST", r"/o/oauth2/auth",
                   lambda request, _: self.oauth.decide(request, self.store.calendars),
                   faults=False)

    def start(self) -> GoogleCalendarEmulator:
        super().start()
        self.oauth.token_url = self.url + "token"
        self.store.base_url = self.url
        return self

    def fault_response(self, status: int) -> Response:
        return injected(status)

    def not_found(self, request: Request) -> Response:
        return google_errors.error_response(404, "notFound", "Not Found")

    # -- acting as a person ------------------------------------------------------------------

    def add_user(self, email: str, time_zone: str = "Europe/Berlin", locale: str = "en") -> None:
        """A user of the domain, with their calendar's zone and their Calendar language."""
        self.store.add_calendar(email, time_zone, google_settings.checked_locale(locale))

    def set_locale(self, email: str, locale: str) -> None:
        """The user picks another language in Calendar's settings (e.g. "de", "en_GB")."""
        with self.store.lock:
            self.store.calendar(email).locale = google_settings.checked_locale(locale)

    def remove_user(self, email: str) -> None:
        """The user is deleted (they left): their calendar answers 404 notFound from now on."""
        with self.store.lock:
            del self.store.calendars[email]

    def create_event(self, calendar: str, **fields: Any) -> dict[str, Any]:
        """A person books a meeting in their own calendar; fields as in the Events resource."""
        return self.store.insert(calendar, fields, conference=True)

    def edit_event(self, calendar: str, event_id: str, **fields: Any) -> dict[str, Any]:
        """A person edits the organiser's event (patch semantics, no If-Match)."""
        return self.store.patch(calendar, event_id, fields, if_match=None, conference=True)

    def move_event(self, calendar: str, event_id: str, by: timedelta) -> dict[str, Any]:
        event = self.store.get(calendar, event_id)
        moved = {}
        for name in ("start", "end"):
            moment = datetime.fromisoformat(event[name]["dateTime"]) + by
            moved[name] = {**event[name], "dateTime": moment.isoformat()}
        return self.edit_event(calendar, event_id, **moved)

    def cancel_event(self, calendar: str, event_id: str) -> None:
        self.store.delete(calendar, event_id)

    def event(self, calendar: str, event_id: str) -> dict[str, Any]:
        return self.store.get(calendar, event_id)

    # -- acting as an admin --------------------------------------------------------------------

    def service_account_key(self, email: str, *delegated_domains: str,
                            scopes: tuple[str, ...] = DELEGATED_BY_DEFAULT) -> dict[str, Any]:
        """A new service account's JSON key file, delegated for the given domains and scopes
        (by default calendar.events and calendar.settings.readonly, as the README asks)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        public_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        self.oauth.add_service_account(email, public_pem, *delegated_domains, scopes=scopes)
        return {
            "type": "service_account",
            "project_id": "meeting-format-sandbox",
            "private_key_id": secrets.token_hex(20),
            "private_key": private_pem,
            "client_email": email,
            "client_id": str(secrets.randbelow(10**21)),
            "token_uri": self.oauth.token_url,
        }

    def installed_app_client(self, consenting_user: str) -> dict[str, Any]:
        """A client-secrets file for the installed-app flow; consent signs in this user."""
        client_id = f"{secrets.randbelow(10**12)}-sandbox.apps.googleusercontent.com"
        secret = "GOCSPX-" + secrets.token_urlsafe(20)
        self.oauth.add_client(client_id, secret)
        self.oauth.consenting_user = consenting_user
        return {"installed": {
            "client_id": client_id, "client_secret": secret, "project_id": "meeting-format-sandbox",
            "auth_uri": self.url + "o/oauth2/auth", "token_uri": self.oauth.token_url,
            "redirect_uris": ["http://localhost"],
        }}

    # -- events ------------------------------------------------------------------------------

    def _list(self, request: Request, match: Any) -> Response:
        calendar = self._calendar_for(request, match, READ_SCOPES)
        params = {key: values[-1] for key, values in request.query.items()}
        return json_response(200, self.store.list_events(calendar, params))

    def _get(self, request: Request, match: Any) -> Response:
        calendar = self._calendar_for(request, match, READ_SCOPES)
        return json_response(200, self.store.get(calendar, unquote(match["event"])))

    def _insert(self, request: Request, match: Any) -> Response:
        calendar = self._calendar_for(request, match, WRITE_SCOPES)
        event = self.store.insert(calendar, _body(request), conference=_conference(request))
        self._record_updates(event["id"], "insert", request)
        return json_response(200, event)

    def _patch(self, request: Request, match: Any, replace: bool = False) -> Response:
        calendar = self._calendar_for(request, match, WRITE_SCOPES)
        self.about_to_write(calendar, unquote(match["event"]))
        event = self.store.patch(
            calendar, unquote(match["event"]), _body(request),
            if_match=request.header("If-Match"), conference=_conference(request), replace=replace,
        )
        self._record_updates(event["id"], "update" if replace else "patch", request)
        self.count_write(calendar, event["id"])
        return json_response(200, event)

    def _update(self, request: Request, match: Any) -> Response:
        return self._patch(request, match, replace=True)

    def _delete(self, request: Request, match: Any) -> Response:
        calendar = self._calendar_for(request, match, WRITE_SCOPES)
        self.store.delete(calendar, unquote(match["event"]))
        self._record_updates(unquote(match["event"]), "delete", request)
        return Response(204)

    def _record_updates(self, event_id: str, method: str, request: Request) -> None:
        with self.store.lock:
            sent = request.param("sendUpdates", "false") or "false"
            self.store.sent_updates.append((event_id, method, sent))

    # -- settings ----------------------------------------------------------------------------

    def _setting(self, request: Request, match: Any) -> Response:
        grant = self.oauth.user_of(request.header("Authorization"))
        if grant is None:
            raise google_errors.unauthenticated()
        if not grant.scopes & google_settings.READ_SCOPES:
            raise _insufficient_scopes()
        with self.store.lock:
            calendar = self.store.calendar(grant.user)  # 404 notFound for a removed user
            values = google_settings.values(calendar.time_zone, calendar.locale)
        setting_id = unquote(match["setting"])
        if setting_id not in values:
            raise not_found()
        return json_response(200, google_settings.resource(setting_id, values[setting_id]))

    # -- push --------------------------------------------------------------------------------

    def _watch(self, request: Request, match: Any) -> Response:
        calendar = self._calendar_for(request, match, READ_SCOPES)
        body = _body(request)
        channel_id, address = body.get("id", ""), body.get("address", "")
        if body.get("type") not in ("web_hook", "webhook"):
            raise bad_request("invalid", "Invalid value for: type")
        if not channel_id or len(channel_id) > 64 or len(body.get("token", "")) > 256:
            raise bad_request("invalid", "Invalid channel id or token.")
        if not address or (self.require_https and not address.startswith("https://")):
            raise bad_request("push.webhookUrlNotHttps",
                              "WebHook callback must be HTTPS: " + address)
        ttl = int((body.get("params") or {}).get("ttl", DEFAULT_CHANNEL_TTL))
        channel = {
            "kind": "api#channel",
            "id": channel_id,
            "resourceId": secrets.token_urlsafe(20),
            "resourceUri": f"{self.url}calendar/v3/calendars/{calendar}/events?alt=json",
            "expiration": str(int((time.time() + ttl) * 1000)),
        }
        if body.get("token"):
            channel["token"] = body["token"]
        with self._channel_lock:
            if channel_id in self.channels:
                raise google_error(400, "channelIdNotUnique", "Channel id not unique")
            self.channels[channel_id] = {**channel, "calendar": calendar, "address": address,
                                         "messages": 0}
        self._notify(channel_id, "sync")
        return json_response(200, channel)

    def _stop(self, request: Request, match: Any) -> Response:
        if self.oauth.user_of(request.header("Authorization")) is None:
            raise google_errors.unauthenticated()
        body = _body(request)
        with self._channel_lock:
            channel = self.channels.get(body.get("id", ""))
            if channel is None or channel["resourceId"] != body.get("resourceId"):
                raise google_error(404, "notFound",
                                   f"Channel '{body.get('id')}' not found for project '0'")
            del self.channels[body["id"]]
        return Response(204)

    def _calendar_changed(self, calendar: str) -> None:
        with self._channel_lock:
            watching = [cid for cid, c in self.channels.items() if c["calendar"] == calendar]
        for channel_id in watching:
            self._notify(channel_id, "exists")

    def _notify(self, channel_id: str, state: str) -> None:
        with self._channel_lock:
            channel = self.channels.get(channel_id)
            if channel is None or int(channel["expiration"]) < time.time() * 1000:
                return
            channel["messages"] = 1 if state == "sync" else channel["messages"] + 1
            expiration = datetime.fromtimestamp(int(channel["expiration"]) / 1000, UTC)
            headers = {
                "X-Goog-Channel-ID": channel_id,
                "X-Goog-Channel-Expiration": format_datetime(expiration, usegmt=True),
                "X-Goog-Resource-ID": channel["resourceId"],
                "X-Goog-Resource-URI": channel["resourceUri"],
                "X-Goog-Resource-State": state,
                "X-Goog-Message-Number": str(channel["messages"]),
            }
            if "token" in channel:
                headers["X-Goog-Channel-Token"] = channel["token"]
            address = channel["address"]
        self.notifier.send(address, headers)

    # -- batch -------------------------------------------------------------------------------

    def _batch(self, request: Request, match: Any) -> Response:
        content_type = request.header("Content-Type") or ""
        envelope = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + request.body
        )
        if not envelope.is_multipart():
            raise bad_request("invalid", "Batch requests must be multipart/mixed.")
        parts = [part for part in envelope.get_payload() if isinstance(part, email.message.Message)]
        if len(parts) > MAX_BATCH:
            raise bad_request("invalid", f"A batch may hold at most {MAX_BATCH} calls.")
        boundary = "batch_" + secrets.token_hex(12)
        out = []
        for part in parts:
            content_id = (part["Content-ID"] or "").strip("<>")
            inner = self.dispatch(_inner_request(str(part.get_payload()), request)) or injected(503)
            out.append(_response_part(boundary, content_id, inner))
        body = "".join(out) + f"--{boundary}--\r\n"
        content_type = f"multipart/mixed; boundary={boundary}"
        return Response(200, body.encode(), {"Content-Type": content_type})

    # -- access ------------------------------------------------------------------------------

    def _calendar_for(self, request: Request, match: Any, scopes: frozenset[str]) -> str:
        grant = self.oauth.user_of(request.header("Authorization"))
        if grant is None:
            raise google_errors.unauthenticated()
        calendar = unquote(match["cal"])
        calendar = grant.user if calendar == "primary" else calendar
        if calendar != grant.user:
            raise not_found()  # other people's calendars are invisible, as in Google
        if not grant.scopes & scopes:
            raise _insufficient_scopes()
        self.store.calendar(calendar)
        return calendar


def _insufficient_scopes() -> HttpProblem:
    return google_error(403, "insufficientPermissions",
                        "Request had insufficient authentication scopes.")


def _body(request: Request) -> dict[str, Any]:
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except ValueError:
        raise bad_request("parseError", "Parse Error") from None
    if not isinstance(body, dict):
        raise bad_request("parseError", "Parse Error")
    return body


def _conference(request: Request) -> bool:
    return request.param("conferenceDataVersion") == "1"


def _inner_request(text: str, outer: Request) -> Request:
    """One batch part as a request; the outer headers apply unless the part sets its own.

    The part is an HTTP request (request line, header fields, blank line, body), read as an
    HTTP server reads one, without the email package's cost per part.
    """
    head, *rest = _BLANK_LINE.split(text.lstrip("\r\n"), maxsplit=1)
    payload = rest[0] if rest else ""
    request_line, *fields = head.splitlines()
    method, target, _ = request_line.strip().split(" ", 2)
    headers = {k: v for k, v in outer.headers.items() if not k.lower().startswith("content-")}
    for field in fields:
        name, colon, value = field.partition(":")
        if not colon:
            raise bad_request("invalid", f"A batch part has a malformed header: {field!r}")
        headers[name.strip().lower()] = value.strip()
    parts = urlsplit(target)
    return Request(method, parts.path, parse_qs(parts.query), headers_of(headers),
                   payload.encode())


def _response_part(boundary: str, content_id: str, response: Response) -> str:
    reason = {200: "OK", 204: "No Content"}.get(response.status, "Error")
    headers = "".join(f"{k}: {v}\r\n" for k, v in response.headers.items())
    return (
        f"--{boundary}\r\nContent-Type: application/http\r\n"
        f"Content-ID: <response-{content_id}>\r\n\r\n"
        f"HTTP/1.1 {response.status} {reason}\r\n{headers}"
        f"Content-Length: {len(response.body)}\r\n\r\n{response.body.decode()}\r\n"
    )

