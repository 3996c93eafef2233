"""The format a line of a reply states in words, clause by clause, in any supported language.

A line is cut into clauses at punctuation and at words such as "but" or "aber". In each, an
in-person or a virtual phrase (assistant/language/words), or a video tool, states a format;
a negation anywhere in the clause turns it around ("not in person", "no need to travel",
"I'd rather not do this one virtually", "Video geht leider nicht"), unless it is politeness
("no problem", "kein Problem"); a clause that tells the past ("we met virtually last time")
states nothing; a clause that hedges ("maybe video?", "either works"), and a line that sets a
condition ("if Karen joins, in person", "otherwise Teams") or names a hybrid meeting, leave
the format open, which the reader must not guess. A word a letter or two away from an
in-person or virtual word is read as it ("vitual", "in-persom"): rapidfuzz's optimal string
alignment, not hand-written distances.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import OSA

from assistant.language.vocabulary import Vocabulary, normal
from assistant.models import Format

IN_WORDS, VIDEO_TOOL = "in words", "video tool"  # the rules, as `parse-reply --json` names them
_TOOL_WORDS = (  # video tools whose names are also everyday words: only as the tool
    re.compile(r"(?<![\w.])(?:ms |microsoft )?Teams\b"),
    re.compile(r"(?:\bgoogle\s+meet\b|(?<![\w.])Meet\b(?=\s*(?:works|is\b|please|link|call"
               r"|it is|[.,!;]|$)))", re.IGNORECASE),
)
_NOT_THE_TOOL = re.compile(r"\b(?:the|our|their|both|two|all|your|sales|customer|my)\s+$",
                           re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?;…]+(?=\s|$)")
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
    plain = _without_politeness(said, words)
    marks = {name: {clauses.of_word(m.start) for m in phrases.find(plain)}
             for name, phrases in (("narrative", words.narrative), ("hedge", words.hedges),
                                   ("request", words.requests), ("negation", words.negations))}
    # A condition or a hybrid meeting anywhere in a sentence leaves all of it open: "Depends
    # on whether Karen joins – if she does, in person."
    sentences = _Sentences(folded)
    open_sentences = {sentences.of(tokens[m.start][0])
                      for phrases in (words.mixed, words.conditions)
                      for m in phrases.find(plain)}
    hybrid = next(words.mixed.find(said), None) is not None
    stated, left_open = [], []
    for offset, value, rule in _cues(said, line, tokens, words):
        clause = clauses.of_offset(offset)
        if clause in marks["narrative"]:
            continue
        if sentences.of(offset) in open_sentences:
            left_open.append(sentences.text(sentences.of(offset), line))
            continue
        if clause in marks["hedge"] or (clauses.asks(clause) and clause not in marks["request"]):
            left_open.append(clauses.text(clause, line))
            continue
        if clause in marks["negation"]:
            value = value.other
        stated.append(Stated(offset, value, rule))
    if hybrid and not left_open:
        left_open.append(line[:80])  # "Hybrid, Priya dials in": no format, and none to guess
    return LineFormats(tuple(stated), tuple(dict.fromkeys(left_open)))


def _without_politeness(said: tuple[str, ...], words: Vocabulary) -> tuple[str, ...]:
    """said with its polite phrases ("no problem", "if possible") and corrections ("wait
    no") blanked, so that their "no" and "if" neither negate nor set a condition."""
    blanked = list(said)
    for phrases in (words.polite, words.corrections):  # "wait, no: in person" is no negation
        for match in phrases.find(said):
            blanked[match.start:match.end] = [""] * (match.end - match.start)
    return tuple(blanked)


def fold(text: str) -> str:
    """text in lower case without accents, character for character (offsets stay)."""
    return "".join(_fold_char(c) for c in text)


def words_of(folded: str) -> tuple[str, ...]:
    return tuple(normal(word) for word in re.findall(r"\w+", folded))


def _cues(said: tuple[str, ...], line: str, tokens: list[tuple[int, str]],
          words: Vocabulary) -> list[tuple[int, Format, str]]:
    """Each in-person or virtual phrase or video tool, in order: (offset, format, rule). A
    tool whose name is an everyday word ("Teams") is found in the line's own spelling."""
    cues = [(tokens[m.start][0], value, rule)
            for phrases, value, rule in ((words.in_person, Format.IN_PERSON, IN_WORDS),
                                         (words.virtual, Format.VIRTUAL, IN_WORDS),
                                         (words.tools, Format.VIRTUAL, VIDEO_TOOL))
            for m in phrases.find(said)]
    for pattern in _TOOL_WORDS:
        for found in pattern.finditer(line):
            if not _NOT_THE_TOOL.search(line[:found.start()]):
                cues.append((found.start(), Format.VIRTUAL, VIDEO_TOOL))
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


class _Sentences:
    """Which sentence of a line a character is in."""

    def __init__(self, folded: str) -> None:
        self.line = folded
        self.ends = [m.end() for m in _SENTENCE_END.finditer(folded)]

    def of(self, offset: int) -> int:
        return bisect.bisect_right(self.ends, offset)

    def text(self, sentence: int, line: str) -> str:
        start = self.ends[sentence - 1] if sentence else 0
        end = self.ends[sentence] if sentence < len(self.ends) else len(line)
        return line[start:end].strip()[:80]


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


@functools.cache
def _fold_char(c: str) -> str:
    base = unicodedata.normalize("NFKD", c)[:1] or c
    lowered = base.lower()
    return lowered if len(lowered) == 1 else base
