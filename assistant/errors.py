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
