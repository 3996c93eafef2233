"""The languages the assistant writes and reads: English, German, French and Spanish.

Texts are English in the code and templates, marked for translation, and translated through
the gettext catalogs in assistant/language/locales: N_ (one text) and Nn_ (a text with a
plural) mark them in Python, {% trans %} blocks in templates. The checklist's own wording is
translated in the checklist file instead (config/checklist.toml, `translations.<language>`).
The catalogs are .po files only: they are compiled in memory when first used (catalogs.py).

After changing a marked text, update the catalogs from the repository's root, then translate
what the update marks new or fuzzy in each .po file (tests/unit/test_catalogs.py fails until
every text is translated):

    pybabel extract -F assistant/language/babel.cfg -k Nn_:1,2 -c TRANSLATORS: \\
        --add-location=file --sort-output --project=meeting-format-assistant \\
        -o assistant/language/locales/assistant.pot .
    pybabel update -i assistant/language/locales/assistant.pot -d assistant/language/locales \\
        -D assistant

A new language: add its code to SUPPORTED, run `pybabel init -i .../assistant.pot -d
assistant/language/locales -D assistant -l CODE`, translate, and give every checklist row a
`translations.CODE` table.
"""

from __future__ import annotations

SUPPORTED = ("en", "de", "fr", "es")
DEFAULT = "en"


def N_(message: str) -> str:
    """Marks a text for the catalogs where it is written, to be translated where it is shown."""
    return message


def Nn_(singular: str, plural: str) -> tuple[str, str]:
    """Marks a text with a plural for the catalogs, like N_: the count chooses where shown."""
    return singular, plural
