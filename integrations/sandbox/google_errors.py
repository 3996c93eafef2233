"""Error responses in the shape Google's APIs send them.

https://developers.google.com/calendar/api/guides/errors gives the bodies:
{"error": {"errors": [{"domain", "reason", "message", "locationType"?, "location"?}],
"code", "message"}}. Real responses also carry a gRPC-style "status" for some codes (e.g.
UNAUTHENTICATED on 401), which we add where Google is known to.
"""

from __future__ import annotations

from integrations.sandbox.server import HttpProblem, Response, json_response

_STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
_DOMAINS = {"rateLimitExceeded": "usageLimits", "userRateLimitExceeded": "usageLimits",
            "quotaExceeded": "usageLimits", "fullSyncRequired": "calendar"}


def error_response(
    code: int, reason: str, message: str, *, location: str = "", location_type: str = "",
    headers: dict[str, str] | None = None,
) -> Response:
    detail = {"domain": _DOMAINS.get(reason, "global"), "reason": reason, "message": message}
    if location:
        detail |= {"locationType": location_type or "parameter", "location": location}
    error = {"errors": [detail], "code": code, "message": message}
    if code in _STATUS_NAMES:
        error["status"] = _STATUS_NAMES[code]
    return json_response(code, {"error": error}, headers)


def google_error(
    code: int, reason: str, message: str, *, location: str = "", location_type: str = ""
) -> HttpProblem:
    return HttpProblem(error_response(code, reason, message, location=location,
                                      location_type=location_type))


def not_found() -> HttpProblem:
    return google_error(404, "notFound", "Not Found")


def bad_request(reason: str, message: str) -> HttpProblem:
    return google_error(400, reason, message)


def gone_full_sync() -> HttpProblem:
    message = "Sync token is no longer valid, a full sync is required."
    return google_error(410, "fullSyncRequired", message, location="syncToken",
                        location_type="parameter")


def unauthenticated() -> HttpProblem:
    return HttpProblem(error_response(
        401, "authError",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
        "cookie or other valid authentication credential.",
        location="Authorization", location_type="header",
        headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
    ))


def injected(status: int) -> Response:
    """The body Google sends with a throttling or server error."""
    if status == 429:
        return error_response(429, "rateLimitExceeded", "Rate Limit Exceeded",
                              headers={"Retry-After": "1"})
    if status == 403:
        return error_response(403, "userRateLimitExceeded", "User Rate Limit Exceeded")
    if status == 503:
        return error_response(503, "backendError", "The service is currently unavailable.")
    return error_response(status, "backendError", "Backend Error")
