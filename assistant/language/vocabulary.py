"""The words replies are read by, in every supported language at once.

Each language has a file in assistant/language/words/ (en.toml documents every list); video
tools, which are the same in every language, are in tools.toml. A reply is read with the
lists of all languages merged, whatever language its question went out in: organisers mix
languages, and "Teams reicht" must count.

Text and phrases are compared in a normal form: accents and case dropped, "ß" as "ss", any
non-word character a word break, so "In-Persön" and "in person" are the same two words.
"""

from __future__ import annotations

import functools
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from assistant.language import SUPPORTED

WORDS = Path(__file__).resolve().parent / "words"
_WORD = re.compile(r"\w+")


def normal(text: str) -> str:
    """text without accents, in lower case, "ß" as "ss": how phrases are compared."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(normal(text)))


@dataclass(frozen=True)
class Match:
    start: int  # index of its first word
    end: int  # index after its last word
    phrase: tuple[str, ...]


class Phrases:
    """A set of phrases of one or more words, found in a sequence of words.

    Indexed by first word, so finding costs a look-up per word, not a pass per phrase: a
    hostile reply of 100,000 characters is read in linear time.
    """

    def __init__(self, phrases: Iterable[str]) -> None:
        self._by_first: dict[str, list[tuple[str, ...]]] = {}
        for phrase in {words(p) for p in phrases if words(p)}:
            self._by_first.setdefault(phrase[0], []).append(phrase)
        for group in self._by_first.values():
            group.sort(key=len, reverse=True)  # the longest phrase at a place wins

    def __contains__(self, word: str) -> bool:
        return word in self._by_first

    def find(self, sequence: tuple[str, ...]) -> Iterator[Match]:
        """Each phrase in sequence, left to right, never two overlapping."""
        index = 0
        while index < len(sequence):
            for phrase in self._by_first.get(sequence[index], ()):
                if sequence[index:index + len(phrase)] == phrase:
                    yield Match(index, index + len(phrase), phrase)
                    index += len(phrase)
                    break
            else:
                index += 1

    def only(self, sequence: tuple[str, ...]) -> bool:
        """sequence is made of these phrases and nothing else (and is not empty)."""
        covered = sum(match.end - match.start for match in self.find(sequence))
        return bool(sequence) and covered == len(sequence)

    def words(self) -> set[str]:
        return {word for group in self._by_first.values() for phrase in group for word in phrase}


@dataclass(frozen=True)
class Vocabulary:
    in_person: Phrases
    virtual: Phrases
    tools: Phrases
    typo_targets: tuple[str, ...]
    negations: Phrases
    corrections: Phrases
    narrative: Phrases
    hedges: Phrases
    mixed: Phrases
    conditions: Phrases
    polite: Phrases
    requests: Phrases
    unknown: Phrases
    courtesy: Phrases
    sign_offs: Phrases
    mobile_footers: Phrases
    disclaimers: Phrases
    legal_words: Phrases
    address_words: frozenset[str]
    row_labels: tuple[str, ...]
    side_labels: tuple[str, ...]
    answer_is: tuple[str, ...]
    every_question: Phrases
    letter_for: tuple[str, ...]
    clause_breaks: Phrases


@functools.cache
def vocabulary(languages: tuple[str, ...] = SUPPORTED) -> Vocabulary:
    """The merged word lists of languages (all supported ones by default)."""
    lists: dict[str, list[str]] = {}
    for language in languages:
        data = tomllib.loads((WORDS / f"{language}.toml").read_text(encoding="utf-8"))
        for name, items in data.items():
            lists.setdefault(name, []).extend(items)
    tools = tomllib.loads((WORDS / "tools.toml").read_text(encoding="utf-8"))["tools"]
    phrases = {name: Phrases(items) for name, items in lists.items()}
    return Vocabulary(
        in_person=phrases["in_person"],
        virtual=phrases["virtual"],
        tools=Phrases(tools),
        typo_targets=tuple(sorted({normal(word) for word in lists["typo_targets"]})),
        negations=phrases["negations"],
        corrections=phrases["corrections"],
        narrative=phrases["narrative"],
        hedges=phrases["hedges"],
        mixed=phrases["mixed"],
        conditions=phrases["conditions"],
        polite=phrases["polite"],
        requests=phrases["requests"],
        unknown=phrases["unknown"],
        courtesy=phrases["courtesy"],
        sign_offs=phrases["sign_offs"],
        mobile_footers=phrases["mobile_footers"],
        disclaimers=phrases["disclaimers"],
        legal_words=phrases["legal_words"],
        address_words=frozenset(normal(word) for word in lists["address_words"]),
        row_labels=_longest_first(lists["row_labels"]),
        side_labels=_longest_first(lists["side_labels"]),
        answer_is=_longest_first(lists["answer_is"]),
        every_question=phrases["every_question"],
        letter_for=_longest_first(lists["letter_for"]),
        clause_breaks=phrases["clause_breaks"],
    )


def _longest_first(items: list[str]) -> tuple[str, ...]:
    """items in normal form, the longest first: how alternatives in a pattern must come."""
    return tuple(sorted({normal(item) for item in items}, key=len, reverse=True))
