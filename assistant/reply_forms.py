"""The forms an answer takes, for the reply reader: the checklist's questions and options in
every language (to tell a quoted question, and an option pasted back), the rows' names, and
the patterns of a row number with its letter ("2A", "5 should be B", "A for 3")."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from assistant.checklist import Checklist
from assistant.language import SUPPORTED
from assistant.language.catalogs import translations
from assistant.language.vocabulary import Vocabulary, normal, words
from assistant.models import Side

WORDING_WORD = 6  # letters a word needs to tell an option by ("complex", not "the")


@dataclass(frozen=True)
class Wordings:
    """The checklist's questions and options in every language, in normal form."""

    questions: list[str]
    question_rows: list[int]
    options: list[str]
    option_rows: list[tuple[int, Side]]

    def side_of_words(self, row: int, line: str) -> Side | None:
        """The side of row whose wording alone has line's longer words ("complex" under
        "A: complex, subtle, nuanced / B: simple, direct"); None where both or neither do."""
        said = {word for word in words(line) if len(word) >= WORDING_WORD}
        sides = {side for text, (number, side) in zip(self.options, self.option_rows,
                                                      strict=True)
                 if number == row and said & set(words(text))}
        return next(iter(sides)) if said and len(sides) == 1 else None

    def options_of(self, row: int) -> set[str]:
        return {text for text, (number, _) in zip(self.options, self.option_rows, strict=True)
                if number == row}


@functools.cache
def wordings(checklist: Checklist) -> Wordings:
    questions, question_rows, options, option_rows = [], [], [], []
    for language in SUPPORTED:
        for row in checklist.in_language(language):
            questions.append(normal(row.question).strip(" ?¿"))
            question_rows.append(row.number)
            for side in Side:
                options.append(normal(row.wording(side)).strip(" ."))
                option_rows.append((row.number, side))
    return Wordings(questions, question_rows, options, option_rows)


@functools.cache
def named_rows(checklist: Checklist) -> tuple[re.Pattern[str], dict[str, int]]:
    """Rows named as the emails name them ("stakeholders", "Beteiligte") then a letter, and
    each name's row number."""
    numbers = {normal(name): row.number for row in checklist for language in SUPPORTED
               for name in {row.key, translations(language).gettext(row.key)}}
    names = "|".join(re.escape(name) for name in sorted(numbers, key=len, reverse=True))
    return re.compile(rf"(?<![\w])(?P<name>{names})\s*(?:[:\-–—=>]+\s*)?"
                      rf"(?P<letter>[ab])(?![\w'’])"), numbers


@functools.cache
def row_patterns(words: Vocabulary) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """A row number then its letter ("2A", "question 2: option B", "5 should be B", "7 -> A"),
    and a letter then its row ("A for 3", "B für 5"), over folded text."""
    def any_of(phrases: tuple[str, ...]) -> str:
        return "|".join(re.escape(phrase).replace(r"\ ", r"\s+") for phrase in phrases)

    labels, sides, joins = any_of(words.row_labels), any_of(words.side_labels), \
        any_of(words.answer_is)
    number_first = re.compile(
        rf"(?<![\w.#])(?:(?:{labels})\.?\s*)?#?\s*(?P<number>\d{{1,2}})(?!\d)"
        rf"\s*(?:(?:[:\-.)=–—/>→]|(?:{joins})(?!\w))\s*)*(?:(?:{sides})\s*[:.]?\s*)?"
        rf"(?P<letter>[a-z])(?![\w'’])(?!\.\w)")
    letter_first = re.compile(
        rf"(?<![\w'’])(?P<letter>[ab])\s+(?:{any_of(words.letter_for)})\s+"
        rf"(?:(?:{labels})\.?\s*)?#?(?P<number>\d{{1,2}})(?![\d\w])")
    return number_first, letter_first
