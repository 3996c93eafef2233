"""Every text a person reads is rendered here from the Jinja2 templates in templates/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from assistant import resources


class Renderer:
    """A Jinja2 environment over the templates folder.

    HTML templates (.html.j2) are autoescaped, so a meeting title like `<script>` arrives as
    text; undefined variables are errors, so a template typo fails a test instead of a mail.
    """

    def __init__(self, templates: Path | None = None) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(templates or resources.templates_dir()),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self._env.filters["and_list"] = and_list

    def render(self, name: str, context: dict[str, Any]) -> str:
        return self._env.get_template(name).render(context)


def and_list(items: list[str] | tuple[str, ...]) -> str:
    """'a', 'a and b', 'a, b and c': a list read as a sentence."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
