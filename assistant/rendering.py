"""Every text a person reads is rendered here from the Jinja2 templates in templates/.

A template is written in English, its sentences in {% trans %} blocks; rendered in another
language, each block is that language's sentence from the gettext catalogs (see
assistant.language), and the and_list filter joins a list as that language does.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from assistant import resources
from assistant.language import DEFAULT
from assistant.language.catalogs import translations
from assistant.language.phrases import voice


class Renderer:
    """A Jinja2 environment per language over the templates folder.

    HTML templates (.html.j2) are autoescaped, so a meeting title like `<script>` arrives as
    text; undefined variables are errors, so a template typo fails a test instead of a mail.
    """

    def __init__(self, templates: Path | None = None) -> None:
        self._loader = jinja2.FileSystemLoader(templates or resources.templates_dir())
        self._environments: dict[str, jinja2.Environment] = {}

    def render(self, name: str, context: dict[str, Any], language: str = DEFAULT) -> str:
        """The template name rendered with context, in language (one of SUPPORTED)."""
        return self._environment(language).get_template(name).render(context)

    def _environment(self, language: str) -> jinja2.Environment:
        env = self._environments.get(language)
        if env is None:
            env = jinja2.Environment(
                loader=self._loader,
                autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
                undefined=jinja2.StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
                keep_trailing_newline=False,
                extensions=["jinja2.ext.i18n"],
            )
            # The i18n extension adds this method to the environment.
            env.install_gettext_translations(  # type: ignore[attr-defined]
                translations(language), newstyle=True)
            env.filters["and_list"] = _and_list_in(language)
            env.filters["bold"] = bold
            self._environments[language] = env
        return env


def and_list(items: Iterable[str], language: str = DEFAULT) -> str:
    """'a', 'a and b', 'a, b and c': a list read as a sentence, in language."""
    return voice(language).and_list(items)


def bold(text: Any) -> Markup:
    """<b>text</b>, escaped: for a value inside a translated sentence of an HTML template."""
    return Markup("<b>%s</b>") % text


def _and_list_in(language: str) -> Any:
    @jinja2.pass_eval_context
    def and_list_filter(eval_ctx: jinja2.nodes.EvalContext, items: Iterable[Any]) -> str:
        if eval_ctx.autoescape:  # each item escaped unless it is markup already, the whole safe
            return Markup(and_list([str(escape(item)) for item in items], language))
        return and_list(items, language)

    return and_list_filter
