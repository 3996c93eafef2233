"""The gettext catalogs: up to date with the sources, complete, and true to their placeholders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from assistant.language import DEFAULT, SUPPORTED
from assistant.language.catalogs import LOCALES, catalog_path, negotiate, translations

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "assistant" / "language" / "babel.cfg"
TRANSLATED = [language for language in SUPPORTED if language != DEFAULT]
# %(name)s in templates (Jinja's newstyle gettext), {name} in Python (str.format).
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|(?<!\{)\{(\w+)\}(?!\})")


def _read(path: Path, language: str | None = None) -> Catalog:
    with path.open("rb") as file:
        return read_po(file, locale=language)


def _extracted() -> set[object]:
    """The message ids `pybabel extract` finds now, with the options the commands give."""
    with MAPPING.open() as file:
        method_map, options_map = parse_mapping_cfg(file)
    keywords = {**DEFAULT_KEYWORDS, "Nn_": (1, 2)}
    return {message for _, _, message, _, _ in
            extract_from_dir(str(ROOT), method_map, options_map, keywords=keywords)}


def _ids(catalog: Catalog) -> set[object]:
    return {message.id if isinstance(message.id, str) else tuple(message.id)
            for message in catalog if message.id}


def _placeholders(text: str) -> set[str]:
    return {match.group(1) or match.group(2) for match in _PLACEHOLDER.finditer(text)}


def test_the_template_catalog_has_every_marked_text_and_no_other():
    template = _ids(_read(LOCALES / "assistant.pot"))
    extracted = _extracted()
    assert extracted - template == set(), "texts not in the catalogs: run the commands in " \
                                          "assistant/language/__init__.py"
    assert template - extracted == set(), "texts in the catalogs no source marks any more"


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_text_is_translated_and_none_is_fuzzy(language):
    catalog = _read(catalog_path(language), language)
    assert catalog.plural_forms == Catalog(locale=language).plural_forms
    assert _ids(catalog) == _ids(_read(LOCALES / "assistant.pot"))
    for message in catalog:
        if not message.id:
            continue
        assert not message.fuzzy, message.id
        strings = message.string if message.pluralizable else (message.string,)
        assert len(strings) == (catalog.num_plurals if message.pluralizable else 1), message.id
        assert all(text.strip() for text in strings), message.id


@pytest.mark.parametrize("language", TRANSLATED)
def test_each_translation_has_the_placeholders_of_its_text(language):
    for message in _read(catalog_path(language), language):
        if not message.id:
            continue
        if not message.pluralizable:
            assert _placeholders(message.string) == _placeholders(message.id), message.id
            continue
        singular, plural = message.id
        # The singular form may leave the count out ("one quick answer"), as the English does.
        assert _placeholders(message.string[0]) in ({*_placeholders(singular)},
                                                    {*_placeholders(plural)}), message.id
        for text in message.string[1:]:
            assert _placeholders(text) == _placeholders(plural), message.id


@pytest.mark.parametrize("language", TRANSLATED)
def test_a_catalog_compiles_in_memory(language):
    assert translations(language).gettext("in person") not in ("", "in person")
    assert translations(language) is translations(language)  # compiled once


def test_english_needs_no_catalog_and_other_languages_are_refused():
    assert translations("en").gettext("in person") == "in person"
    assert translations("en").ngettext("{count} hour", "{count} hours", 1) == "{count} hour"
    with pytest.raises(ValueError, match="unsupported language 'it'"):
        translations("it")


@pytest.mark.parametrize(("tag", "language"), [
    ("de-DE", "de"), ("de_AT", "de"), ("fr-CA", "fr"), ("es-419", "es"), ("EN-us", "en"),
    ("de_AT.UTF-8@euro", "de"), ("de-DE-u-co-phonebk", "de"), ("es", "es"), ("fr_FR", "fr"),
    ("it-IT", None), ("pt-BR", None), ("zh-Hant-TW", None), ("C", None), ("", None),
    ("  ", None), (None, None), ("123", None),
])
def test_a_tag_is_negotiated_to_a_supported_language(tag, language):
    assert negotiate(tag) == language
