"""A local emulator of Microsoft Graph's calendar API and the identity platform msal talks to.

Real HTTP, so msal and requests run unchanged: msal through LoginRedirect (it insists on an
https authority), Graph calls at `<url>v1.0/...` as `[microsoft] graph_endpoint`. Covered, after
https://learn.microsoft.com/en-us/graph/api/resources/event and the pages cited in graph_store:
- GET /users/{id}/calendarView/delta (Prefer: odata.maxpagesize, outlook.timezone);
- GET, PATCH (If-Match), DELETE /users/{id}/events/{id}, POST /users/{id}/events, and /me/...;
  $expand=singleValueExtendedProperties($filter=id eq '...');
- POST /$batch, JSON, at most 20 requests (https://learn.microsoft.com/en-us/graph/json-batching);
- /subscriptions: create with the validation handshake, renew, delete; change notifications
  and lifecycle notifications as real POSTs
  (https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks);
- GET /users/{id}/mailboxSettings ($select) and /mailboxSettings/{property}, language among
  them (graph_settings; https://learn.microsoft.com/en-us/graph/api/user-get-mailboxsettings),
  for a token with MailboxSettings.Read or .ReadWrite: else 403 ErrorAccessDenied; an unknown
  user is 404 ErrorInvalidUser. Each mailbox has its own locale (`add_user(..., locale=)`,
  `set_locale`), "en-US" unless set;
- errors in Graph's shape (graph_errors); app-only tokens reach every mailbox, a user's token
  only its own.
Knobs: `faults`, `store.expire_delta_tokens()`, `identity.revoke_access_tokens()`,
`identity.withdraw_consent()`, an app's application permissions (`identity.register_app(...,
permissions=)`, `identity.remove_permission(client_id, "MailboxSettings.Read")`,
`add_permission`), `send_lifecycle()`. The "acting as a person" methods book, edit, move and
cancel meetings, and change a user's language (`set_locale`).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from integrations.sandbox import graph_fields as fields
from integrations.sandbox import graph_settings
from integrations.sandbox.graph_errors import error_response, graph_error, injected
from integrations.sandbox.graph_store import DEFAULT_PAGE, MAX_PAGE, GraphStore
from integrations.sandbox.microsoft_identity import Grant, IdentityServer
from integrations.sandbox.server import (
    Faults,
    Request,
    Response,
    SandboxServer,
    headers_of,
    json_response,
)

MAX_BATCH = 20
# Outlook events: under seven days, as the current subscription docs say (older copies of the
# page said 4,230 minutes; the adapter renews well before either).
MAX_SUBSCRIPTION_MINUTES = 10_080
_USER = r"(?:users/(?P<user>[^/]+)|me)"
_PROPERTY_FILTER = re.compile(r"singleValueExtendedProperties\(\$filter=id eq '([^']+)'\)")
_ZONE = re.compile(r'outlook\.timezone="([^"]+)"')
_PAGE = re.compile(r"odata\.maxpagesize=(\d+)")


class GraphEmulator(SandboxServer):
    def __init__(self, faults: Faults | None = None, *, tenant: str = "example.com",
                 require_https: bool = False,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        super().__init__(faults)
        self.now = now  # the clock subscription lifetimes are checked against
        self.tenant = tenant
        self.store = GraphStore()
        self.identity = IdentityServer()
        self.require_https = require_https
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self._subscription_lock = threading.Lock()
        self.store.on_change = self._notify_change
        self._identity_routes()
        api = r"/v1\.0"
        self.route("GET", rf"{api}/{_USER}/calendarView/delta", self._delta)
        self.route("POST", rf"{api}/{_USER}/events", self._create)
        self.route("GET", rf"{api}/{_USER}/events/(?P<event>[^/]+)", self._get)
        self.route("PATCH", rf"{api}/{_USER}/events/(?P<event>[^/]+)", self._patch)
        self.route("DELETE", rf"{api}/{_USER}/events/(?P<event>[^/]+)", self._delete)
        self.route("GET", rf"{api}/{_USER}/mailboxSettings", self._settings)
        self.route("GET", rf"{api}/{_USER}/mailboxSettings/(?P<prop>[^/]+)", self._settings)
        self.route("POST", rf"{api}/\$batch", self._batch)
        self.route("POST", rf"{api}/subscriptions", self._subscribe)
        self.route("PATCH", rf"{api}/subscriptions/(?P<sub>[^/]+)", self._renew)
        self.route("DELETE", rf"{api}/subscriptions/(?P<sub>[^/]+)", self._unsubscribe)

    def _identity_routes(self) -> None:
        identity, tenant = self.identity, r"/(?P<tenant>[^/]+)"
        # The identity platform is another service; msal retries it on its own terms.
        self.route("GET", rf"{tenant}/v2\.0/\.well-known/openid-configuration",
                   lambda r, m: identity.openid_configuration(m["tenant"]), faults=False)
        self.route("GET", r"/common/discovery/instance",
                   lambda r, m: identity.instance_discovery(), faults=False)
        self.route("POST", rf"{tenant}/oauth2/v2\.0/token",
                   lambda r, m: identity.token(m["tenant"], r), faults=False)
        self.route("POST", rf"{tenant}/oauth2/v2\.0/devicecode",
                   lambda r, m: identity.device_code(m["tenant"], r), faults=False)
        # Where a person enters a device code: the stand-in for microsoft.com/devicelogin.
        self.route("GET", r"/devicelogin", lambda r, m: identity.device_login_page(r),
                   faults=False)
        self.route("POST", r"/devicelogin",
                   lambda r, m: identity.device_login(r, self.store.mailboxes), faults=False)

    @property
    def graph_url(self) -> str:
        return self.url + "v1.0"

    def fault_response(self, status: int) -> Response:
        return injected(status)

    def not_found(self, request: Request) -> Response:
        return error_response(400, "BadRequest",
                              f"Resource not found for the segment '{request.path}'.")

    # -- acting as a person ------------------------------------------------------------------

    def add_user(self, address: str, locale: str = graph_settings.DEFAULT_LOCALE) -> None:
        """A user with a mailbox, and the language and region they chose for it."""
        self.store.add_mailbox(address, graph_settings.checked_locale(locale))

    def set_locale(self, address: str, locale: str) -> None:
        """The user picks another language in Outlook's settings (e.g. "de-DE")."""
        with self.store.lock:
            self.store.mailbox(address).locale = graph_settings.checked_locale(locale)

    def remove_user(self, address: str) -> None:
        """The user is deleted (they left): their mailbox answers 404 ErrorInvalidUser."""
        with self.store.lock:
            del self.store.mailboxes[address.lower()]

    def create_event(self, address: str, **fields_: Any) -> dict[str, Any]:
        return self._shown(self.store.create(address, fields_), None)

    def edit_event(self, address: str, event_id: str, **fields_: Any) -> dict[str, Any]:
        return self._shown(self.store.patch(address, event_id, fields_, if_match=None), None)

    def move_event(self, address: str, event_id: str, by: timedelta) -> dict[str, Any]:
        event = self.store.get(address, event_id)
        moved = {}
        for name in ("start", "end"):
            moment = datetime.fromisoformat(event[name]["dateTime"][:26]) + by
            moved[name] = {"dateTime": moment.isoformat(), "timeZone": "UTC"}
        return self.edit_event(address, event_id, **moved)

    def cancel_event(self, address: str, event_id: str) -> None:
        self.store.delete(address, event_id)

    def event(self, address: str, event_id: str) -> dict[str, Any]:
        """The event as stored, times in UTC, with its extended properties by id."""
        shown = self.store.get(address, event_id)
        shown["extendedProperties"] = shown.pop("_properties", {})
        return shown

    def send_lifecycle(self, subscription_id: str, lifecycle_event: str) -> None:
        with self._subscription_lock:
            subscription = self.subscriptions[subscription_id]
        payload = {"value": [{
            "subscriptionId": subscription_id, "lifecycleEvent": lifecycle_event,
            "subscriptionExpirationDateTime": subscription["expirationDateTime"],
            "clientState": subscription.get("clientState"), "tenantId": self._tenant_id(),
        }]}
        self.notifier.send(subscription["lifecycleNotificationUrl"],
                           {"Content-Type": "application/json"}, json.dumps(payload).encode())

    # -- events ------------------------------------------------------------------------------

    def _delta(self, request: Request, match: Any) -> Response:
        address = self._mailbox_for(request, match)
        prefer = request.header("Prefer") or ""
        page = _PAGE.search(prefer)
        size = min(int(page.group(1)), MAX_PAGE) if page else DEFAULT_PAGE
        zone_name = _zone(prefer)
        params = {key: values[-1] for key, values in request.query.items()}
        refused = {"$expand", "$filter", "$orderby", "$search", "$select"} & set(params)
        if refused:  # documented as unsupported on calendarView delta
            raise graph_error(400, "BadRequest",
                              f"The query parameter '{sorted(refused)[0]}' is not supported.")
        items, more, final = self.store.delta_page(address, params, size, zone_name)
        link_base = f"{self.graph_url}/users/{quote(address)}/calendarView/delta"
        body: dict[str, Any] = {
            "@odata.context": f"{self.graph_url}/$metadata#Collection(event)",
            "value": [self._shown(item, None) for item in items],
        }
        if more is not None:
            body["@odata.nextLink"] = f"{link_base}?$skiptoken={fields.encode_token(more)}"
        else:
            body["@odata.deltaLink"] = f"{link_base}?$deltatoken={fields.encode_token(final)}"
        # Graph answers delta with this preference applied, whatever the client asked.
        applied = _applied(prefer)
        applied["Preference-Applied"] = ", ".join(
            part for part in ("odata.track-changes", applied.get("Preference-Applied")) if part)
        return json_response(200, body, applied)

    def _get(self, request: Request, match: Any) -> Response:
        address = self._mailbox_for(request, match)
        prefer = request.header("Prefer") or ""
        event = self.store.get(address, unquote(match["event"]), _zone(prefer))
        return json_response(200, self._shown(event, request.param("$expand")), _applied(prefer))

    def _create(self, request: Request, match: Any) -> Response:
        address = self._mailbox_for(request, match)
        event = self.store.create(address, _json(request), _zone(request.header("Prefer") or ""))
        return json_response(201, self._shown(event, None))

    def _patch(self, request: Request, match: Any) -> Response:
        address = self._mailbox_for(request, match)
        self.about_to_write(address, unquote(match["event"]))
        prefer = request.header("Prefer") or ""
        event = self.store.patch(address, unquote(match["event"]), _json(request),
                                 if_match=request.header("If-Match"), zone_name=_zone(prefer))
        self.count_write(address, event["id"])
        return json_response(200, self._shown(event, request.param("$expand")), _applied(prefer))

    def _delete(self, request: Request, match: Any) -> Response:
        self.store.delete(self._mailbox_for(request, match), unquote(match["event"]))
        return Response(204)

    def _shown(self, event: dict[str, Any], expand: str | None) -> dict[str, Any]:
        properties = event.pop("_properties", {})
        wanted = _PROPERTY_FILTER.search(expand or "")
        if wanted and wanted.group(1) in properties:
            event["singleValueExtendedProperties"] = [
                {"id": wanted.group(1), "value": properties[wanted.group(1)]}]
        return event

    # -- mailbox settings --------------------------------------------------------------------

    def _settings(self, request: Request, match: Any) -> Response:
        grant = self._grant(request)
        if not grant.permissions & graph_settings.READ_PERMISSIONS:
            raise graph_error(403, "ErrorAccessDenied",
                              "Access is denied. Check credentials and try again.")
        address = unquote(match["user"]) if match["user"] else grant.user
        self._check_access(grant, address)
        with self.store.lock:
            mailbox = self.store.mailbox(address)  # 404 ErrorInvalidUser
            locale = mailbox.locale
        prop = match.groupdict().get("prop")
        body = graph_settings.answer(self.graph_url, address, locale,
                                     unquote(prop) if prop else None, request.param("$select"))
        if body is None:
            raise graph_error(400, "BadRequest",
                              f"Resource not found for the segment '{unquote(prop or '')}'.")
        return json_response(200, body)

    # -- batch -------------------------------------------------------------------------------

    def _batch(self, request: Request, match: Any) -> Response:
        requests = _json(request).get("requests")
        if not isinstance(requests, list) or not requests:
            raise graph_error(400, "BadRequest", "Invalid batch payload format.")
        if len(requests) > MAX_BATCH:
            raise graph_error(400, "BadRequest",
                              f"Number of requests in batch exceeds {MAX_BATCH}.")
        responses = [self._batch_item(item, request) for item in requests]
        responses.reverse()  # Graph does not promise order; clients must match by id
        return json_response(200, {"responses": responses})

    def _batch_item(self, item: dict[str, Any], outer: Request) -> dict[str, Any]:
        if str(item.get("url", "")).lower().startswith(("http:", "https:")):
            return {"id": item.get("id"), "status": 400, "headers": {},
                    "body": {"error": {"code": "BadRequest",
                                       "message": "Invalid batch payload format."}}}
        url = "/v1.0/" + str(item.get("url", "")).lstrip("/")
        parts = urlsplit(url)
        headers = {"authorization": outer.header("Authorization") or "",
                   **{k.lower(): v for k, v in (item.get("headers") or {}).items()}}
        body = json.dumps(item["body"]).encode() if "body" in item else b""
        inner = Request(str(item.get("method", "GET")).upper(), parts.path, parse_qs(parts.query),
                        headers_of(headers), body)
        response = self.dispatch(inner) or injected(503)
        content = json.loads(response.body) if response.body else None
        return {"id": item.get("id"), "status": response.status,
                "headers": {k: v for k, v in response.headers.items() if k != "request-id"},
                **({"body": content} if content is not None else {})}

    # -- subscriptions -----------------------------------------------------------------------

    def _subscribe(self, request: Request, match: Any) -> Response:
        grant = self._grant(request)
        body = _json(request)
        resource = str(body.get("resource", ""))
        found = re.fullmatch(r"/?(?:users/([^/]+)|me)/events", resource, re.IGNORECASE)
        if found is None:
            raise graph_error(400, "InvalidRequest", f"Invalid resource '{resource}'.")
        self._check_access(grant, unquote(found.group(1) or grant.user))
        expires = _expiry(body.get("expirationDateTime"), self.now())
        if len(str(body.get("clientState", ""))) > 128:
            raise graph_error(400, "InvalidRequest", "clientState exceeds 128 characters.")
        for url in (body.get("notificationUrl"), body.get("lifecycleNotificationUrl")):
            if url is not None:
                self._validate_endpoint(str(url))
        subscription = {
            "id": str(uuid.uuid4()), "resource": resource, "applicationId": grant.client_id,
            "changeType": body.get("changeType", ""), "clientState": body.get("clientState"),
            "notificationUrl": body.get("notificationUrl"),
            "lifecycleNotificationUrl": body.get("lifecycleNotificationUrl"),
            "expirationDateTime": expires, "creatorId": str(uuid.uuid4()),
            "latestSupportedTlsVersion": "v1_2", "includeResourceData": False,
            "mailbox": unquote(found.group(1) or grant.user).lower(),
        }
        with self._subscription_lock:
            self.subscriptions[subscription["id"]] = subscription
        shown = {k: v for k, v in subscription.items() if k != "mailbox"}
        return json_response(201, {"@odata.context": f"{self.graph_url}/$metadata#subscriptions"
                                    "/$entity", **shown})

    def _renew(self, request: Request, match: Any) -> Response:
        self._grant(request)
        expires = _expiry(_json(request).get("expirationDateTime"), self.now())
        with self._subscription_lock:
            subscription = self.subscriptions.get(match["sub"])
            if subscription is None:
                raise graph_error(404, "ResourceNotFound", "The object was not found.")
            subscription["expirationDateTime"] = expires
            shown = {k: v for k, v in subscription.items() if k != "mailbox"}
        return json_response(200, shown)

    def _unsubscribe(self, request: Request, match: Any) -> Response:
        self._grant(request)
        with self._subscription_lock:
            if self.subscriptions.pop(match["sub"], None) is None:
                raise graph_error(404, "ResourceNotFound", "The object was not found.")
        return Response(204)

    def _validate_endpoint(self, url: str) -> None:
        """The handshake: the endpoint must echo the validation token as text within 10 s."""
        if self.require_https and not url.startswith("https://"):
            raise graph_error(400, "InvalidRequest", "The notification URL must use https.")
        token = secrets.token_urlsafe(24)
        probe = urllib.request.Request(f"{url}?validationToken={quote(token)}", data=b"",
                                       headers={"Content-Type": "text/plain"}, method="POST")
        try:
            with urllib.request.urlopen(probe, timeout=10) as answer:
                echoed = answer.status == 200 and answer.read().decode() == token
        except (urllib.error.URLError, OSError):
            echoed = False
        if not echoed:
            raise graph_error(400, "ValidationError", "Subscription validation request failed. "
                              "Notification endpoint must respond with 200 OK to validation "
                              "request.")

    def _notify_change(self, mailbox: str, event_id: str, kind: str) -> None:
        with self._subscription_lock:
            targets = [s for s in self.subscriptions.values() if s["mailbox"] == mailbox
                       and _wants(s["changeType"], kind)]
        for subscription in targets:
            resource = f"Users/{mailbox}/Events/{event_id}"
            payload = {"value": [{
                "subscriptionId": subscription["id"],
                "subscriptionExpirationDateTime": subscription["expirationDateTime"],
                "changeType": kind, "resource": resource,
                "resourceData": {"@odata.type": "#Microsoft.Graph.Event",
                                 "@odata.id": resource, "id": event_id},
                "clientState": subscription.get("clientState"), "tenantId": self._tenant_id(),
            }]}
            self.notifier.send(subscription["notificationUrl"],
                               {"Content-Type": "application/json"}, json.dumps(payload).encode())

    # -- access ------------------------------------------------------------------------------

    def _grant(self, request: Request) -> Grant:
        grant = self.identity.grant_for(request.header("Authorization"))
        if grant is None:
            raise graph_error(401, "InvalidAuthenticationToken",
                              "Lifetime validation failed, the token is expired.")
        return grant

    def _mailbox_for(self, request: Request, match: Any) -> str:
        grant = self._grant(request)
        address = unquote(match["user"]) if match["user"] else grant.user
        self._check_access(grant, address)
        self.store.mailbox(address)
        return address

    def _check_access(self, grant: Grant, address: str) -> None:
        if grant.user and grant.user.lower() != address.lower():
            raise graph_error(403, "ErrorAccessDenied",
                              "Access is denied. Check credentials and try again.")

    def _tenant_id(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_DNS, self.tenant))


def _json(request: Request) -> dict[str, Any]:
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except ValueError:
        raise graph_error(400, "BadRequest", "Unable to read JSON request payload.") from None
    if not isinstance(body, dict):
        raise graph_error(400, "BadRequest", "Unable to read JSON request payload.")
    return body


def _zone(prefer: str) -> str:
    found = _ZONE.search(prefer)
    if found:
        fields.zone(found.group(1))  # 400 for a zone Graph would not know
        return found.group(1)
    return "UTC"


def _applied(prefer: str) -> dict[str, str]:
    applied = [part.strip() for part in prefer.split(",") if part.strip()]
    return {"Preference-Applied": ", ".join(applied)} if applied else {}


def _expiry(value: Any, now: datetime) -> str:
    try:
        expires = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise graph_error(400, "InvalidRequest", "expirationDateTime is invalid.") from None
    expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
    if expires <= now:
        raise graph_error(400, "InvalidRequest", "expirationDateTime must be in the future.")
    if expires > now + timedelta(minutes=MAX_SUBSCRIPTION_MINUTES):
        raise graph_error(400, "InvalidRequest", "Subscription expiration can only be "
                          f"{MAX_SUBSCRIPTION_MINUTES} minutes in the future.")
    return expires.isoformat().replace("+00:00", "Z")


def _wants(change_types: str, kind: str) -> bool:
    return kind in {part.strip() for part in change_types.split(",")}
