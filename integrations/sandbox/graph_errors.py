"""Error responses in Microsoft Graph's shape.

https://learn.microsoft.com/en-us/graph/errors: {"error": {"code", "message", "innerError":
{"date", "request-id", "client-request-id"}}}; throttling answers 429 (or 503) with a
Retry-After header in seconds (https://learn.microsoft.com/en-us/graph/throttling).
"""

from __future__ import annotations

import time
import uuid

from integrations.sandbox.server import HttpProblem, Response, json_response


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> Response:
    request_id = str(uuid.uuid4())
    inner = {"date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
             "request-id": request_id, "client-request-id": request_id}
    return json_response(status, {"error": {"code": code, "message": message,
                                            "innerError": inner}},
                         {"request-id": request_id, **(headers or {})})


def graph_error(status: int, code: str, message: str) -> HttpProblem:
    return HttpProblem(error_response(status, code, message))


def not_found() -> HttpProblem:
    return graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def injected(status: int) -> Response:
    if status == 429:
        return error_response(429, "ApplicationThrottled",
                              "Application is over its MailboxConcurrency limit.",
                              {"Retry-After": "1"})
    if status == 503:
        return error_response(503, "ServiceUnavailable", "Service Unavailable",
                              {"Retry-After": "1"})
    return error_response(status, "InternalServerError", "An internal server error occurred.")
