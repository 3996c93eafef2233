"""The format a line of a reply states in words, clause by clause, in any supported language.

A line is cut into clauses at punctuation and at words such as "but" or "aber". In each, an
in-person or a virtual phrase (assistant/language/words), or a video tool, states a format;
a negation up to three words before it turns it around ("not in person", "no need to
travel"); a clause that tells the past ("we met virtually last time") states nothing; a
clause that hedges ("maybe video?", "either works") leaves the format open, which the reader
must not guess. A word a letter or two away from an in-person or virtual word is read as it
("vitual", "in-persom"): rapidfuzz's optimal string alignment, not hand-written distances.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import OSA

from assistant.language.vocabulary import Match, Vocabulary, normal
from assistant.models import Format

IN_WORDS, VIDEO_TOOL = "in words", "video tool"  # the rules, as `parse-reply --json` names them
_NEGATION_REACH = 3  # a negation turns a phrase at most this many words after it
_TOOL_WORDS = (  # video tools whose names are also everyday words: only as the tool
    re.compile(r"(?<![\w.])(?:ms |microsoft )?Teams\b"),
    re.compile(r"(?:\bgoogle\s+meet\b|(?<![\w.])Meet\b(?=\s*(?:works|is\b|please|link|call"
               r"|it is|[.,!;]|$)))", re.IGNORECASE),
)
_NOT_THE_TOOL = re.compile(r"\b(?:the|our|their|both|two|all|your|sales|customer|my)\s+$",
                           re.IGNORECASE)
_CLAUSE_MARKS = re.compile(r"[;!?…,()\[\]]|\.(?=\s|$)|\s[-–—]+\s|[–—]|\.{2,}")


@dataclass(frozen=True)
class Stated:
    offset: int  # where in the line, so that later statements count later
    format: Format
    rule: str


@dataclass(frozen=True)
class LineFormats:
    stated: tuple[Stated, ...]
    left_open: tuple[str, ...]  # the clauses that mention a format but leave it open


def formats_in(line: str, words: Vocabulary) -> LineFormats:
    """What each clause of line states of the format, in order."""
    folded = fold(line)
    tokens = [(m.start(), normal(m.group(0))) for m in re.finditer(r"\w+", folded)]
    said = tuple(_mended(word, words) for _, word in tokens)
    clauses = _Clauses(folded, [start for start, _ in tokens],
                       [tokens[m.start][0] for m in words.clause_breaks.find(said)])
    marks = {name: {clauses.of_word(m.start) for m in phrases.find(said)}
             for name, phrases in (("narrative", words.narrative), ("hedge", words.hedges),
                                   ("request", words.requests))}
    negations = list(words.negations.find(said))
    stated, left_open = [], []
    for offset, word, value, rule in _cues(said, line, tokens, words):
        clause = clauses.of_offset(offset)
        if clause in marks["narrative"]:
            continue
        if clause in marks["hedge"] or (clauses.asks(clause) and
                                        clause not in marks["request"]):
            left_open.append(clauses.text(clause, line))
            continue
        if word is not None and _negated(negations, word, clause, clauses):
            value = value.other
        stated.append(Stated(offset, value, rule))
    return LineFormats(tuple(stated), tuple(dict.fromkeys(left_open)))


def fold(text: str) -> str:
    """text in lower case without accents, character for character (offsets stay)."""
    return "".join(_fold_char(c) for c in text)


def words_of(folded: str) -> tuple[str, ...]:
    return tuple(normal(word) for word in re.findall(r"\w+", folded))


def _cues(said: tuple[str, ...], line: str, tokens: list[tuple[int, str]],
          words: Vocabulary) -> list[tuple[int, int | None, Format, str]]:
    """Each in-person or virtual phrase or tool, in order: (offset, index of its first word,
    or None for a tool found in the line's own spelling such as "Teams", format, rule)."""
    cues: list[tuple[int, int | None, Format, str]] = [
        (tokens[m.start][0], m.start, value, rule)
        for phrases, value, rule in ((words.in_person, Format.IN_PERSON, IN_WORDS),
                                     (words.virtual, Format.VIRTUAL, IN_WORDS),
                                     (words.tools, Format.VIRTUAL, VIDEO_TOOL))
        for m in phrases.find(said)]
    for pattern in _TOOL_WORDS:
        for found in pattern.finditer(line):
            if not _NOT_THE_TOOL.search(line[:found.start()]):
                cues.append((found.start(), None, Format.VIRTUAL, VIDEO_TOOL))
    return sorted(cues, key=lambda cue: cue[0])


@functools.lru_cache(maxsize=8192)
def _mended(word: str, words: Vocabulary) -> str:
    """word, or the in-person or virtual word it is a small typo of ("vitual")."""
    if len(word) < 5 or word in words.in_person or word in words.virtual:
        return word
    limit = 2 if len(word) >= 9 else 1
    found = process.extractOne(word, words.typo_targets, scorer=OSA.distance,
                               score_cutoff=limit)
    return found[0] if found else word


class _Clauses:
    """Which clause of a line a word or character is in."""

    def __init__(self, folded: str, word_starts: list[int], word_breaks: list[int]) -> None:
        self.line = folded
        self.word_starts = word_starts
        self.breaks = sorted({m.start() for m in _CLAUSE_MARKS.finditer(folded)}
                             | set(word_breaks))

    def of_offset(self, offset: int) -> int:
        return bisect.bisect_right(self.breaks, offset)

    def of_word(self, index: int) -> int:
        return self.of_offset(self.word_starts[index])

    def span(self, clause: int) -> tuple[int, int]:
        start = self.breaks[clause - 1] if clause else 0
        end = self.breaks[clause] if clause < len(self.breaks) else len(self.line)
        return start, end

    def asks(self, clause: int) -> bool:
        _, end = self.span(clause)
        return end < len(self.line) and self.line[end] == "?"

    def text(self, clause: int, line: str) -> str:
        start, end = self.span(clause)
        return line[start:end].strip(" ,;.!?-–—()")[:80]


def _negated(negations: list[Match], word: int, clause: int, clauses: _Clauses) -> bool:
    return any(0 <= word - negation.end < _NEGATION_REACH and
               clauses.of_word(negation.start) == clause for negation in negations)


@functools.cache
def _fold_char(c: str) -> str:
    base = unicodedata.normalize("NFKD", c)[:1] or c
    lowered = base.lower()
    return lowered if len(lowered) == 1 else base
