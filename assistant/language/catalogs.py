"""The gettext catalogs, compiled in memory from their .po files, and which language a tag means.

Only the .po files are kept (locales/<language>/LC_MESSAGES/assistant.po): Babel compiles one
when its language is first used, so a catalog can never be older than its source. English is
the language of the code and templates, so it needs no catalog.
"""

from __future__ import annotations

import functools
import gettext
from io import BytesIO
from pathlib import Path

from babel import negotiate_locale, parse_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from assistant.language import DEFAULT, SUPPORTED

DOMAIN = "assistant"
LOCALES = Path(__file__).resolve().parent / "locales"


def catalog_path(language: str) -> Path:
    return LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    """The translations into language (one of SUPPORTED); for English, the texts as written.

    Raises ValueError for a language the assistant does not write.
    """
    if language not in SUPPORTED:
        raise ValueError(f"unsupported language {language!r}: use one of {', '.join(SUPPORTED)}")
    if language == DEFAULT:
        return gettext.NullTranslations()
    with catalog_path(language).open("rb") as file:
        catalog = read_po(file, locale=language, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out: they fall back to English
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def negotiate(tag: str | None) -> str | None:
    """The supported language a BCP 47 or POSIX tag asks for ("de-AT", "fr_CA.UTF-8",
    "es-419", "EN-us"); None for a language the assistant does not write, or no tag."""
    text = (tag or "").strip().replace("-", "_")
    if not text:
        return None
    # A tag with extensions ("de-DE-u-co-phonebk") is more than a locale: its language will do.
    for candidate in (text, text.partition("_")[0]):
        try:
            language = parse_locale(candidate)[0]
        except ValueError:
            continue
        return negotiate_locale([language], SUPPORTED)
    return None
