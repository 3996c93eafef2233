"""The checklist as data: its rows, loaded and validated from TOML, and how answers name them.

The rows live in config/checklist.toml so that wording can change without touching code; the
numbers and keys are the stable contract that emails, replies and the CLI rely on.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from assistant import resources
from assistant.errors import ConfigError, InputError
from assistant.models import Format, Side
from assistant.validation import describe_validation_error

ROW_COUNT = 12


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

    def wording(self, side: Side) -> str:
        return self.a if side is Side.A else self.b

    def invite_wording(self, side: Side) -> str:
        """How this side reads to a customer, or '' when the row is internal reasoning."""
        return self.invite_a if side is Side.A else self.invite_b

    def title_words(self, side: Side) -> tuple[str, ...]:
        return self.title_words_a if side is Side.A else self.title_words_b


class Checklist:
    """The twelve rows, addressable by number or key."""

    def __init__(self, rows: list[Row]) -> None:
        self.rows = tuple(sorted(rows, key=lambda row: row.number))
        self._by_key = {row.key: row for row in self.rows}
        self._by_number = {row.number: row for row in self.rows}

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

    @field_validator("a", "b", "area", "question")
    @classmethod
    def _worded(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must have words, not only spaces")
        return value.strip()


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
    problems = _whole_checklist_problems(model.rows)
    if problems:
        raise ConfigError(str(path), problems)
    return Checklist([Row(**row.model_dump()) for row in model.rows])


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
