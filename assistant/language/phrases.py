"""Texts the core writes once and people read in their own language: phrases, and voices.

The pure core (inference, scoring) cannot know who will read its words, so it writes a Phrase:
an English message id with {placeholders} and the values to fill them with. A Phrase is a
str, the English, so logs, the CLI's JSON and every comparison read it as before; where a
person reads it, a Voice says it in their language. A Wording is the same kind of str for
words a data file gives in each language (a checklist row's side), and it picks its language.

A Voice also says what Babel's CLDR data knows per language: days, times and lists.
"""

from __future__ import annotations

import functools
import gettext
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

from babel.dates import format_date, format_skeleton, format_time
from babel.lists import format_list

from assistant.language import DEFAULT
from assistant.language.catalogs import translations

# English as the assistant always wrote it: "Thu 3 Dec", and lists without the Oxford comma.
_ENGLISH_DAY, _ENGLISH_DAY_MONTH, _ENGLISH_LISTS = "EEE d MMM", "d MMM", "en_GB"


class Voice:
    """Says texts in one language: the catalog's messages, phrases, days, times and lists."""

    def __init__(self, language: str) -> None:
        self.language = language
        self._translations: gettext.NullTranslations = translations(language)

    def gettext(self, message: str) -> str:
        return self._translations.gettext(message)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        return self._translations.ngettext(singular, plural, count)

    def say(self, value: object) -> str:
        """value in this language: a Phrase translated, a Wording's own words, a date as this
        language writes a day; anything else as it is (a name, a number, an admin's note)."""
        if isinstance(value, Phrase | Wording) and self.language == DEFAULT:
            return str(value)  # its English
        if isinstance(value, Phrase):
            return _said(value.message, value.plural, value.values, self)
        if isinstance(value, Wording):
            return value.texts.get(self.language) or str(value)
        if isinstance(value, date) and not isinstance(value, datetime):
            return self.day_month(value)
        return str(value)

    def day(self, moment: date) -> str:
        """'Thu 3 Dec', 'Do., 3. Dez.', 'jeu. 3 déc.', 'jue, 3 dic'."""
        if self.language == DEFAULT:
            return format_date(moment, _ENGLISH_DAY, locale="en")
        return format_skeleton("MMMEd", moment, locale=self.language)

    def day_month(self, moment: date) -> str:
        """'3 Dec', '3. Dez.', '3 déc.', '3 dic'."""
        if self.language == DEFAULT:
            return format_date(moment, _ENGLISH_DAY_MONTH, locale="en")
        return format_skeleton("MMMd", moment, locale=self.language)

    def clock(self, moment: datetime) -> str:
        """'14:30': a time of day in 24 hours, as all four languages write it in mail."""
        return format_time(moment, "HH:mm", tzinfo=moment.tzinfo, locale=self.language)

    def and_list(self, items: Iterable[str]) -> str:
        """'a, b and c', 'a, b und c', 'a, b et c', 'a, b y c'."""
        items = [str(item) for item in items]
        if not items:
            return ""
        return format_list(items, locale=_ENGLISH_LISTS if self.language == DEFAULT
                           else self.language)


@functools.cache
def voice(language: str) -> Voice:
    """The Voice of language (one of SUPPORTED); ValueError for any other."""
    return Voice(language)


class Phrase(str):
    """An English text that any language can say: a message id and the values to fill in.

    Phrase(N_("it starts in {span}"), span=...) or, with a plural chosen by the value count,
    Phrase(*Nn_("{count} hour", "{count} hours"), count=3). A value is said in the reader's
    language when it is a Phrase or a Wording, as that language writes a day when it is a date,
    and as it is otherwise (a name, a number, an admin's note). The str itself is the English.
    """

    message: str
    plural: str
    values: Mapping[str, Any]

    def __new__(cls, message: str, plural: str = "", /, **values: Any) -> Phrase:
        if plural and not isinstance(values.get("count"), int):
            raise TypeError(f"the phrase {message!r} has a plural, so it needs an int count")
        phrase = super().__new__(cls, _english(message, plural, values))
        phrase.message, phrase.plural = message, plural
        phrase.values = MappingProxyType(dict(values))
        return phrase

    def __reduce__(self) -> tuple[Any, ...]:
        return _phrase, (self.message, self.plural, dict(self.values))


class Wording(str):
    """The same words in each language, as a data file words them; the str is the English."""

    texts: Mapping[str, str]

    def __new__(cls, texts: Mapping[str, str]) -> Wording:
        wording = super().__new__(cls, texts[DEFAULT])
        wording.texts = MappingProxyType(dict(texts))
        return wording

    def __reduce__(self) -> tuple[Any, ...]:
        return Wording, (dict(self.texts),)

    def capitalised(self) -> Wording:
        """The words as a sentence starts them, in every language."""
        return Wording({language: text[:1].upper() + text[1:]
                        for language, text in self.texts.items()})


def joined(separator: str, parts: Iterable[str]) -> str:
    """parts joined with separator ("; "), each said in the reader's language when read."""
    parts = list(parts)
    if len(parts) == 1:
        return parts[0]
    if not any(isinstance(part, Phrase | Wording) for part in parts):
        return separator.join(parts)
    if "{" in separator or "}" in separator:
        raise ValueError(f"a separator cannot hold braces: {separator!r}")
    names = [f"part{index}" for index in range(len(parts))]
    return Phrase(separator.join("{" + name + "}" for name in names),
                  **dict(zip(names, parts, strict=True)))


def _phrase(message: str, plural: str, values: dict[str, Any]) -> Phrase:
    return Phrase(message, plural, **values)


def _english(message: str, plural: str, values: Mapping[str, Any]) -> str:
    """What voice(DEFAULT) says, the short way: the core writes many a phrase no one reads."""
    text = plural if plural and values["count"] != 1 else message
    return text.format(**{name: value if isinstance(value, str) else voice(DEFAULT).say(value)
                          for name, value in values.items()})


def _said(message: str, plural: str, values: Mapping[str, Any], speaker: Voice) -> str:
    text = speaker.ngettext(message, plural, values["count"]) if plural else \
        speaker.gettext(message)
    return text.format(**{name: speaker.say(value) for name, value in values.items()})


def to_json(text: str) -> Any:
    """text as JSON that from_json reads back: a Phrase or a Wording with all it needs to be
    said in any language, other text as the string it is."""
    if isinstance(text, Phrase):
        return {"message": text.message, "plural": text.plural,
                "values": {name: _value_json(value) for name, value in text.values.items()}}
    if isinstance(text, Wording):
        return {"texts": dict(text.texts)}
    return str(text)


def from_json(data: Any) -> str:
    """The text to_json wrote. Raises ValueError for anything it did not write."""
    value = _value_from_json(data)
    if not isinstance(value, str):
        raise ValueError(f"not a text: {data!r}")
    return value


def _value_json(value: Any) -> Any:
    if isinstance(value, str):
        return to_json(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return {"date": value.isoformat()}
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(f"a phrase cannot keep {value!r} as JSON")


def _value_from_json(data: Any) -> Any:
    if isinstance(data, str | int) and not isinstance(data, bool):
        return data
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        values = data.get("values", {})
        if not isinstance(values, dict):
            raise ValueError(f"not a phrase's values: {values!r}")
        try:
            return Phrase(data["message"], str(data.get("plural", "")),
                          **{str(name): _value_from_json(value) for name, value in values.items()})
        except (KeyError, IndexError, TypeError) as err:  # its placeholders and values differ
            raise ValueError(f"not a phrase: {data!r}") from err
    if isinstance(data, dict) and isinstance(data.get("texts"), dict):
        texts = data["texts"]
        if not isinstance(texts.get(DEFAULT), str):
            raise ValueError(f"a wording without English: {data!r}")
        return Wording({str(language): str(text) for language, text in texts.items()})
    if isinstance(data, dict) and isinstance(data.get("date"), str):
        return date.fromisoformat(data["date"])
    raise ValueError(f"not a phrase's value: {data!r}")
