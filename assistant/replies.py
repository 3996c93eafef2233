"""Reading an organiser's answer out of the new text of a reply.

The text has already lost its quoted part, signature and mobile footer (see reply_mail). What
counts, line by line:
- row answers: a row number 1-12, an optional separator (`:` `-` `.` `)` `=`), then A or B
  standing alone: `1A`, `1 a`, `4 - b`, `12: A`;
- positional answers: a line made only of A/B letters ("A B A", "a,b", "ABA"), in the order the
  questions were asked;
- a whole decision in words ("in person", "face to face", "virtual", "video", "online") on a
  line that says nothing else but a few filler words, so "we met virtually last time" is not one.
Anything that looks like an attempt but cannot be read (a conflict, "3C", "13A", words without
an answer) makes the reading unclear: the organiser gets a clarification, never a guess. A text
of thanks alone is neither an answer nor unclear.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from assistant.models import Format, Side

_ROW_ANSWER = re.compile(r"(?<![\w.])(\d{1,2})\s*[:\-.)=]?\s*([A-Za-z])(?![\w])")
_POSITIONAL_LINE = re.compile(r"^[\s,;/|]*(?:[AaBb][\s,;/|]*)+$")
_DECISIONS = (
    (re.compile(r"\bin[\s-]+person\b"), Format.IN_PERSON),
    (re.compile(r"\bface[\s-]+to[\s-]+face\b"), Format.IN_PERSON),
    (re.compile(r"\b(?:virtual|video|online)\b"), Format.VIRTUAL),
)
# Words a one-line decision may carry besides the decision itself ("Let's do it by video").
_FILLERS = frozenset({
    "let's", "lets", "let", "us", "do", "it", "meet", "meeting", "please", "go", "with", "we",
    "should", "i'd", "id", "i", "prefer", "rather", "make", "this", "one", "a", "an", "the",
    "call", "is", "fine", "works", "good", "ok", "okay", "yes", "sure", "thanks", "thank", "you",
    "by", "via", "as", "be", "will", "can",
})
# A reply of only these says thank you, not "I could not answer".
_COURTESY = frozenset({
    "thanks", "thank", "you", "ok", "okay", "cheers", "great", "noted", "got", "it", "perfect",
    "many", "much",
})
_WORD = re.compile(r"[a-z][a-z'’]*")


@dataclass(frozen=True)
class Reading:
    answers: Mapping[int, Side] = field(default_factory=dict)  # row number -> side
    positional: tuple[Side, ...] = ()
    decision: Format | None = None
    unclear: bool = False
    problems: tuple[str, ...] = ()  # what could not be read, in words for the clarification

    @property
    def empty(self) -> bool:
        return not (self.answers or self.positional or self.decision)


def read_answer(text: str, rows: int = 12) -> Reading:
    """What the new text of a reply says; see the module docstring for the rules."""
    answers: dict[int, Side] = {}
    conflicted: set[int] = set()
    positional: list[Side] = []
    decisions: set[Format] = set()
    problems: list[str] = []
    wordy = False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if _POSITIONAL_LINE.match(stripped):
            positional += [Side(letter.upper()) for letter in stripped if letter in "AaBb"]
            continue
        rest = _read_rows(stripped, rows, answers, conflicted, problems)
        decision = _decision(rest)
        if decision is not None:
            decisions.add(decision)
        elif _words(rest) and not _courtesy(rest):
            wordy = True
    if len(decisions) > 1:
        problems.append("the reply says both in person and virtual")
    unclear = bool(problems) or (wordy and not (answers or positional or decisions))
    if unclear and not problems:
        problems.append("no answer could be found in the reply")
    return Reading(
        answers=answers,
        positional=tuple(positional),
        decision=next(iter(decisions)) if len(decisions) == 1 else None,
        unclear=unclear,
        problems=tuple(problems),
    )


def _read_rows(
    line: str, rows: int, answers: dict[int, Side], conflicted: set[int], problems: list[str]
) -> str:
    """Take the row answers out of line (into answers); the rest of the line.

    A row answered both ways is dropped from answers: neither side is known.
    """
    def take(match: re.Match[str]) -> str:
        number, letter = int(match.group(1)), match.group(2).upper()
        if letter not in "AB":
            problems.append(f"“{match.group(0).strip()}”: answer with A or B")
        elif not 1 <= number <= rows:
            problems.append(f"“{match.group(0).strip()}”: there is no question {number}")
        elif number in conflicted:
            pass
        elif answers.get(number, Side(letter)) is not Side(letter):
            problems.append(f"question {number} is answered both A and B")
            conflicted.add(number)
            del answers[number]
        else:
            answers[number] = Side(letter)
        return " "

    return _ROW_ANSWER.sub(take, line)


def _decision(line: str) -> Format | None:
    """The decision a short line states, or None when the line says more than that."""
    lowered = line.lower()
    found = [(pattern, decision) for pattern, decision in _DECISIONS if pattern.search(lowered)]
    if len(found) != 1:
        return None  # none, or both ways on one line: not a plain decision
    pattern, decision = found[0]
    others = [word for word in _words(pattern.sub(" ", lowered)) if word not in _FILLERS]
    return None if others else decision


def _words(text: str) -> list[str]:
    return [word.replace("’", "'") for word in _WORD.findall(text.lower())]


def _courtesy(text: str) -> bool:
    return all(word in _COURTESY for word in _words(text))
