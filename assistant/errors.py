"""The assistant's own errors: one tree, so callers catch by meaning, not by library."""

from __future__ import annotations


class AssistantError(Exception):
    """Base of every error the assistant raises on purpose."""


class ConfigError(AssistantError):
    """A config or checklist file is unreadable or invalid.

    The message names the file, the key path and what would be accepted, so the person
    editing the file can fix it without reading code.
    """

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid config {path}:\n{listing}")


class InputError(AssistantError):
    """Input handed to a command (answers, an event file, history) cannot be used as given."""


class UnreadableEvent(InputError):
    """A provider's event resource lacks what every meeting needs, or has it in a broken shape."""


class UnreadableMail(InputError):
    """A message in the inbox that cannot be read at all: too big, or too malformed."""


class ProviderError(AssistantError):
    """A calendar provider refused or failed a request.

    Names the calendar and, where there is one, the event, so a log line or an admin page can
    say which meeting is affected. Nothing is marked processed when one of these is raised.
    """

    def __init__(self, message: str, *, calendar: str = "", event_id: str = "") -> None:
        self.calendar = calendar
        self.event_id = event_id
        where = [f"calendar {calendar}"] if calendar else []
        where += [f"event {event_id}"] if event_id else []
        super().__init__(f"{message} ({', '.join(where)})" if where else message)


class TransientProviderError(ProviderError):
    """Worth retrying later: throttling, a provider outage, a dropped connection."""

    def __init__(self, message: str, *, retry_after: float | None = None, **where: str) -> None:
        self.retry_after = retry_after  # seconds the provider asked us to wait, if it said
        super().__init__(message, **where)


class RateLimited(TransientProviderError):
    """The provider is throttling us (429, or Google's 403 rateLimitExceeded)."""


class ProviderUnavailable(TransientProviderError):
    """A 5xx answer, a timeout or a dropped connection."""


class AuthFailed(ProviderError):
    """The credentials were refused, even after a fresh token (revoked, delegation not granted)."""


class PermissionDenied(ProviderError):
    """Signed in, but not allowed to do this on this calendar or event."""


class NotFound(ProviderError):
    """The calendar or event does not exist (any more)."""


class CursorExpired(ProviderError):
    """A sync token or delta link is no longer valid: the calendar needs a full sync."""


class Conflict(ProviderError):
    """The event kept changing under us (ETag mismatches) beyond the bounded retries."""


class ProviderRejected(ProviderError):
    """The provider rejected the request as malformed: a defect on our side, not retried."""
