"""The checklist as data: its rows, loaded and validated from TOML, and how answers name them.

The rows live in config/checklist.toml so that wording can change without touching code; the
numbers and keys are the stable contract that emails, replies and the CLI rely on. Each row is
worded in English and translated, in the same file, into every other language the assistant
writes; the title words of every language count for detection, whatever the organiser's.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from assistant import resources
from assistant.errors import ConfigError, InputError
from assistant.language import DEFAULT, N_, SUPPORTED
from assistant.language.phrases import Wording
from assistant.models import Format, Side
from assistant.validation import describe_validation_error

ROW_COUNT = 12
TRANSLATED = tuple(language for language in SUPPORTED if language != DEFAULT)
# The keys as an email in another language names the rows (Voice.gettext(row.key)); listed
# here for the catalogs. The keys themselves never change.
# TRANSLATORS: the short name of a checklist row, shown as "1. importance: A, ...".
KEY_NAMES = (N_("importance"), N_("priorities"), N_("number"), N_("stakeholders"),
             N_("values"), N_("location"), N_("rapport"), N_("stability"), N_("discussion"),
             N_("power"), N_("type"), N_("enablers"))


@dataclass(frozen=True)
class RowWording:
    """A row's words in a language other than English."""

    question: str
    a: str
    b: str
    invite_a: str = ""
    invite_b: str = ""
    title_words_a: tuple[str, ...] = ()
    title_words_b: tuple[str, ...] = ()


@dataclass(frozen=True)
class Row:
    number: int
    key: str
    area: str
    question: str
    a: str
    b: str
    invite_a: str = ""
    invite_b: str = ""
    title_words_a: tuple[str, ...] = ()
    title_words_b: tuple[str, ...] = ()
    describes_customer: bool = False  # about the customer, not the meeting: remembered
    translations: tuple[tuple[str, RowWording], ...] = ()  # (language, its words)

    def wording(self, side: Side) -> str:
        return self.a if side is Side.A else self.b

    def invite_wording(self, side: Side) -> str:
        """How this side reads to a customer, or '' when the row is internal reasoning."""
        return self.invite_a if side is Side.A else self.invite_b

    def title_words(self, side: Side) -> tuple[str, ...]:
        """The title words of every language."""
        return self.title_words_a if side is Side.A else self.title_words_b

    def translation(self, language: str) -> RowWording | None:
        return next((words for code, words in self.translations if code == language), None)

    def in_language(self, language: str) -> Row:
        """This row worded in language; in English where it has no translation."""
        words = self.translation(language)
        if words is None:
            return self
        return replace(self, question=words.question, a=words.a, b=words.b,
                       invite_a=words.invite_a, invite_b=words.invite_b)

    def said(self, side: Side, *, invite: bool = False, capitalised: bool = False) -> Wording:
        """A side in every language (its invite wording with invite), for a reader's own;
        capitalised as a sentence starts it."""
        return _said(self, f"{'invite_' if invite else ''}{'a' if side is Side.A else 'b'}",
                     capitalised)


@functools.lru_cache(maxsize=1024)  # scoring says the same few sides again and again
def _said(row: Row, field: str, capitalised: bool) -> Wording:
    wording = Wording({DEFAULT: getattr(row, field),
                       **{code: getattr(words, field) for code, words in row.translations}})
    return wording.capitalised() if capitalised else wording


class Checklist:
    """The twelve rows, addressable by number or key."""

    def __init__(self, rows: list[Row]) -> None:
        self.rows = tuple(sorted(rows, key=lambda row: row.number))
        self._by_key = {row.key: row for row in self.rows}
        self._by_number = {row.number: row for row in self.rows}
        self._languages: dict[str, Checklist] = {}

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def row(self, key: str) -> Row:
        return self._by_key[key]

    def find(self, name: str | int) -> Row:
        """The row a person meant by a number ("7", 7) or a key ("rapport", "Rapport")."""
        text = str(name).strip().lower()
        if text.isdigit() and int(text) in self._by_number:
            return self._by_number[int(text)]
        if text in self._by_key:
            return self._by_key[text]
        raise InputError(
            f"unknown checklist row {name!r}: use a number 1-{len(self.rows)} "
            f"or one of {', '.join(self._by_key)}"
        )

    def in_language(self, language: str) -> Checklist:
        """The same rows, numbers and keys, with their questions and sides worded in language
        (one of SUPPORTED; ValueError for any other)."""
        if language not in SUPPORTED:
            raise ValueError(f"unsupported language {language!r}: use one of "
                             f"{', '.join(SUPPORTED)}")
        if language == DEFAULT:
            return self
        if language not in self._languages:
            self._languages[language] = Checklist([row.in_language(language)
                                                   for row in self.rows])
        return self._languages[language]


def parse_side(value: str) -> Side:
    """A side from what a person may write: A/B, or the format it stands for."""
    text = re.sub(r"[\s_-]+", " ", str(value).strip().lower())
    if text in ("a", "in person", "inperson"):
        return Side.A
    if text in ("b", "virtual", "video", "remote", "online"):
        return Side.B
    raise InputError(f"unknown answer {value!r}: use A (in person) or B (virtual)")


def parse_format(value: str) -> Format:
    """A format from what a person may write, e.g. 'in person', 'IN_PERSON', 'virtual'."""
    return parse_side(value).favours


class _WordingModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str = Field(min_length=1)
    a: str = Field(min_length=1)
    b: str = Field(min_length=1)
    invite_a: str = ""
    invite_b: str = ""
    title_words_a: tuple[str, ...] = ()
    title_words_b: tuple[str, ...] = ()

    @field_validator("a", "b", "question")
    @classmethod
    def _worded(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must have words, not only spaces")
        return value.strip()


class _RowModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    number: int = Field(ge=1, le=ROW_COUNT)
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    area: str = Field(min_length=1)
    question: str = Field(min_length=1)
    a: str = Field(min_length=1)
    b: str = Field(min_length=1)
    invite_a: str = ""
    invite_b: str = ""
    title_words_a: tuple[str, ...] = ()
    title_words_b: tuple[str, ...] = ()
    describes_customer: bool = False
    translations: dict[str, _WordingModel] = Field(default_factory=dict)

    @field_validator("a", "b", "area", "question")
    @classmethod
    def _worded(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must have words, not only spaces")
        return value.strip()

    @field_validator("translations")
    @classmethod
    def _known_languages(cls, value: dict[str, _WordingModel]) -> dict[str, _WordingModel]:
        for language in value:
            if language not in TRANSLATED:
                raise ValueError(f"unknown language {language!r}: a row is translated into "
                                 f"{', '.join(TRANSLATED)} (its own fields are the English)")
        return value


class _ChecklistModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows: list[_RowModel]


def load_checklist(path: Path | None = None) -> Checklist:
    """Read and validate a checklist file (the shipped one by default).

    Raises ConfigError naming the file and every problem found.
    """
    path = path or resources.default_checklist_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(str(path), [f"cannot read the file: {err}"]) from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(str(path), [f"not valid TOML: {err}"]) from err
    try:
        model = _ChecklistModel.model_validate(data)
    except ValidationError as err:
        raise ConfigError(str(path), describe_validation_error(err, _ChecklistModel)) from err
    problems = _whole_checklist_problems(model.rows) + _translation_problems(model.rows)
    if problems:
        raise ConfigError(str(path), problems)
    return Checklist([_row(row) for row in model.rows])


def _row(model: _RowModel) -> Row:
    """A row with its translations, and the title words of every language."""
    fields = model.model_dump(exclude={"translations"})
    translations = tuple((language, RowWording(**words.model_dump()))
                         for language, words in sorted(model.translations.items(),
                                                       key=lambda item: SUPPORTED.index(item[0])))
    for side in ("title_words_a", "title_words_b"):
        every: dict[str, str] = {}  # each word once, whatever its case; the English first
        for word in (*fields[side], *(word for _, words in translations
                                      for word in getattr(words, side))):
            every.setdefault(word.casefold(), word)
        fields[side] = tuple(every.values())
    return Row(**fields, translations=translations)


def _translation_problems(rows: list[_RowModel]) -> list[str]:
    """Each row needs every language, with the same fields as its English: a side a customer
    may read (invite_a/_b) in one language is one they may read in all."""
    problems = []
    for index, row in enumerate(rows):
        for language in TRANSLATED:
            words = row.translations.get(language)
            where = f"rows[{index}].translations.{language}"
            if words is None:
                problems.append(f"{where}: missing; row {row.number} ({row.key}) needs a "
                                f"translation into each of {', '.join(TRANSLATED)}")
                continue
            for field in ("invite_a", "invite_b"):
                if getattr(row, field) and not getattr(words, field):
                    problems.append(f"{where}.{field}: missing; the English row has "
                                    f"{field}, so every translation needs it too")
                elif getattr(words, field) and not getattr(row, field):
                    problems.append(f"{where}.{field}: the English row has no {field} "
                                    "(customers never read that side), so no translation may")
    return problems


def _whole_checklist_problems(rows: list[_RowModel]) -> list[str]:
    problems = []
    if len(rows) != ROW_COUNT:
        problems.append(f"rows: the checklist needs exactly {ROW_COUNT} rows, found {len(rows)}")
    for attribute in ("number", "key"):
        seen: dict[object, int] = {}
        for index, row in enumerate(rows):
            value = getattr(row, attribute)
            if value in seen:
                problems.append(
                    f"rows[{index}].{attribute}: {value!r} is already used by rows[{seen[value]}]; "
                    f"each row needs its own {attribute}"
                )
            seen.setdefault(value, index)
    return problems
