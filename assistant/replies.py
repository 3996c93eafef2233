"""Reading an organiser's answer out of a reply, as a person would, and never guessing.

The text is the reply's layout (see reply_layout): the organiser's own lines, and quoted
lines marked `>`, which are never read for answers but tell which question an answer typed
under it belongs to. What counts, in English, German, French or Spanish (word lists in
assistant/language/words):
- row answers: a row number 1-12, maybe a label and a separator, then A or B standing alone:
  `1A`, `4 - b`, `12: A`, `question 2: option B`, `Q3 - A`, `#4 b`, `Frage 2: B`;
- an answer under a quoted question: `B`, `b - they're all remote anyway`, the option's
  wording pasted back, or an in-person or virtual phrase;
- positional answers: a line made only of A/B letters ("A B A", "a,b"), in the order the
  questions were asked;
- a decision said in words, anywhere in a sentence: "a video call suits me", "Teams is
  fine", "no need to travel", "vor Ort bitte", "plutôt en visio", "por videollamada".
  Negations turn a phrase around ("not in person"); a clause that tells the past ("we met
  virtually last time") decides nothing; small typos are mended ("vitual").
The last statement wins where the organiser corrected themselves ("3B... no, wait, 3A").
Everything else that could be read two ways makes the reading unclear: two answers without
a correction, a format in a hedge ("maybe video?"), "3C", "13A", words without an answer.
The organiser then gets a clarification, never a guess: a wrong answer applied is the one
failure that must not happen. A text of thanks alone is neither an answer nor unclear.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

from assistant.checklist import Checklist, load_checklist
from assistant.language import N_
from assistant.language.vocabulary import normal, vocabulary
from assistant.models import Format, Side
from assistant.reply_forms import named_rows, row_patterns, wordings
from assistant.reply_mail import ReplyEmail
from assistant.reply_sentences import fold, formats_in, words_of

DECISION = 0  # the target of a statement about the format, rather than a row
# Rules that read an answer, named in `parse-reply --json`.
NUMBERED, UNDER_QUESTION, OPTION_WORDING, FOR_EVERY = (
    "row number", "under its question", "option wording", "one letter for every question")
_POSITIONAL_LINE = re.compile(r"^[\s,;/|]*(?:[AaBb][\s,;/|.!]*)+$")
_ROW_BOTH = re.compile(r"(?<![\w.#])\d{1,2}\s*[:\-.)=–—]?\s*(?:both|either|beide|beides|egal|"
                       r"les deux|ambas|ambos|da igual)\b")
_ARROW = re.compile(r"^[-=~>→»]+\s*")
_SELECTED = re.compile(r"\s(?:<[-=]+|<<|←|\(x\)|\[x\]|✓|✔|☑)\s*(?:[^\W\d][\w ]{0,24})?$",
                       re.IGNORECASE)  # "B: … <--", "A: … <-- this one"
_AND = re.compile(r"\b(?:and|und|et|y)\b|&")
_DOUBTED = re.compile(r"\s*\?")  # "7A?": asked back, not answered
_EITHER_LETTER = re.compile(r"\s*(?:or|oder|ou|o|/)\s*[ab](?!\w)")  # "2 - A or B"
# A line of contact details: a phone number (international, or after its label), an address
# for mail or the web. Not any run of digits: "move it to 10.12.2026, in person" is a reply.
_CONTACT = re.compile(r"(?:\+|\b00)\d[\d ()./-]{6,}\d|\b(?:tel|phone|mobile|mob|fax|cell|"
                      r"m|t|p|f)\b\.?\s*:?\s*\(?\d[\d ()./-]{5,}\d|\S+@\S+\.\w+|https?://|www\.",
                      re.IGNORECASE)
_LEADING_LETTER = re.compile(r"^\(?([ab])\)?(?:\s*$|\s*[-–—:,.;!?/(]|\s+(?=[-–—(]))")
_NAME_WORDS = 3
_CONTACT_WORDS = 8  # a longer line with a phone number in it is a sentence, and read
_LETTER_LAST = re.compile(r"^(?:[^\W\d][\w'’]*\s+){1,3}\(?([AB])\)?\s*[.!]?$")
_LEADING_B = re.compile(r"^B\s+(?=\w)")  # "B they're remote": no article is a capital B
_OPTION_LABEL = re.compile(r"^[*_\s]*\(?([AaBb])[*_]*\s*[:).]\s*[*_]*\s*(.+)$")
_OPTION_SCORE = 88  # how alike a pasted option must be to its wording (rapidfuzz ratio)
_QUESTION_SCORE = 85  # how alike a quoted line must be to a question to stand for it
_LONGEST_QUOTED_QUESTION = 400


@dataclass(frozen=True)
class Problem:
    """Something in a reply that could not be read, for the clarification email.

    message is English with {placeholders}, and the catalogs' message id: the clarification
    translates it before filling in the values.
    """

    message: str
    values: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message.format(**self.values)


@dataclass(frozen=True)
class Reading:
    answers: Mapping[int, Side] = field(default_factory=dict)  # row number -> side
    positional: tuple[Side, ...] = ()
    decision: Format | None = None
    unclear: bool = False
    problems: tuple[Problem, ...] = ()  # what could not be read, for the clarification
    rules: Mapping[int, str] = field(default_factory=dict)  # row (or DECISION) -> its rule

    @property
    def empty(self) -> bool:
        return not (self.answers or self.positional or self.decision)


NOTHING_FOUND = N_("no answer could be found in the reply")
EMPTY_REPLY = N_("the reply was empty: perhaps it was sent before it was written")
WHICH_QUESTIONS = N_("one letter for all the questions, but the question email is not quoted, "
                     "so I can't tell which they were")
MORE_LETTERS = N_("more letters than questions asked")
NOT_UNDERSTOOD = N_("question {number}: I couldn't tell A from B in “{text}”")
LEFT_OPEN = N_("“{text}” leaves the format open")
ONLY_ATTACHMENTS = N_("the reply has only {attachments} and no text; attachments are not read")


def read_answer(text: str, checklist: Checklist | None = None) -> Reading:
    """What the text of a reply says; see the module docstring for the rules."""
    return _Reader(checklist or _shipped_checklist()).read(text)


def read_reply(reply: ReplyEmail, checklist: Checklist | None = None) -> Reading:
    """What a reply says: nothing for an automatic reply; for a reply without a line of the
    organiser's own, why nothing could be read."""
    if reply.auto_reply:
        return Reading()
    if not reply.new_text.strip():
        return nothing_readable(reply.attachments)
    return read_answer(reply.body or reply.new_text, checklist)


def nothing_readable(attachments: tuple[str, ...]) -> Reading:
    """The reading of a reply with no text: unclear, saying why, so the organiser knows."""
    problem = (Problem(ONLY_ATTACHMENTS, {"attachments": ", ".join(attachments)})
               if attachments else Problem(EMPTY_REPLY))
    return Reading(unclear=True, problems=(problem,))


@functools.cache
def _shipped_checklist() -> Checklist:
    return load_checklist()


@dataclass(frozen=True)
class _Statement:
    order: tuple[int, int]  # (line, character): later statements come later
    target: int  # a row number, or DECISION
    value: Side | Format
    rule: str


class _Reader:
    def __init__(self, checklist: Checklist) -> None:
        self.checklist = checklist
        self.words = vocabulary()
        self.wordings = wordings(checklist)
        self.rows, self.letters_first = row_patterns(self.words)
        self.named = named_rows(checklist)
        self.statements: list[_Statement] = []
        self.corrections: list[tuple[int, int]] = []
        self.positional: list[Side] = []
        self.problems: list[Problem] = []
        self.wordy = False
        self.left_open: list[str] = []  # lines that leave it open, without a format in them
        self.quoted_rows: dict[int, None] = {}  # the questions quoted, in order
        self.for_every: list[tuple[int, Side]] = []  # "Both B": (line, side)

    def read(self, text: str) -> Reading:
        context: int | None = None  # the row of the question quoted just above
        answered_here = False  # the run of lines under that question has answered it
        for number, raw in enumerate(text.splitlines()):
            quoted = raw.lstrip().startswith(">")
            line = raw.lstrip().lstrip(">").strip() if quoted else raw.strip()
            if quoted:
                if line:
                    context = self._question_of(line, context)
                    answered_here = False
                    if context is not None:
                        self.quoted_rows.setdefault(context)
                        answered_here = self._marked_option(number, line, context)
                continue
            if not line:
                continue
            if context is None:
                self._read_free(number, line)
            elif not answered_here:
                answered_here = self._read_under(number, line, context)
        return self._settled()

    # -- lines under a quoted question -----------------------------------------------------

    def _question_of(self, line: str, context: int | None) -> int | None:
        """The row a quoted line belongs to (its question or one of its options), else None."""
        if len(line) > _LONGEST_QUOTED_QUESTION:
            return None
        line = line.strip("*_ ")
        label = _OPTION_LABEL.match(line)
        if label:
            row = self._option_row(label.group(2))
            return row[0] if row is not None else context  # an option of the question above
        text = re.sub(r"^[-*•\s]*(\d{1,2})\s*[.)]\s*", "", line)
        found = process.extractOne(normal(text), self.wordings.questions, scorer=fuzz.ratio,
                                   score_cutoff=_QUESTION_SCORE)
        if found is not None:
            return self.wordings.question_rows[found[2]]
        if context is not None and normal(line) in self.wordings.options_of(context):
            return context  # an option line without its letter
        return None

    def _marked_option(self, number: int, line: str, row: int) -> bool:
        """Whether a quoted option line carries the organiser's mark ("B: … <--"), as Outlook
        users answer in the original; the mark's side goes into statements."""
        if not _SELECTED.search(line):
            return False
        label = _OPTION_LABEL.match(line.strip("*_ "))
        if label is None:
            return False
        self.statements.append(_Statement((number, 0), row, Side(label.group(1).upper()),
                                          UNDER_QUESTION))
        return True

    def _read_under(self, number: int, line: str, row: int) -> bool:
        """Read a line typed under row's quoted question; whether it answered the row."""
        folded = fold(line)
        found = self._row_answers(number, line, folded)
        if found:
            return True
        if (every := self._for_every_question(folded)) is not None:
            self.for_every.append((number, every))
            return True
        side = self._leading_letter(line, folded)
        rule = UNDER_QUESTION
        if side is None and (option := self._option_row(line)) is not None:
            side, rule = (option[1], OPTION_WORDING) if option[0] == row else (None, rule)
        if side is None:
            side = self._side_in_words(line)
        if side is None and (side := self.wordings.side_of_words(row, line)) is not None:
            rule = OPTION_WORDING  # "complex" under "A: complex, subtle, nuanced"
        said = words_of(folded)
        if side is not None and next(self.words.hedges.find(said), None):
            self.problems.append(Problem(LEFT_OPEN, {"text": line[:80]}))  # "B? not sure"
            return True
        if side is not None:
            self.statements.append(_Statement((number, 0), row, side, rule))
            return True
        dont_know = any(next(phrases.find(said), None) for phrases in (
            self.words.unknown, self.words.hedges, self.words.polite))  # "not sure yet"
        if not (dont_know or self.words.courtesy.only(said)):
            # Typed under a question, it answers that question in a way not understood: ask,
            # rather than decide without it ("yes - Initech is circling").
            self.problems.append(Problem(NOT_UNDERSTOOD, {"number": str(row),
                                                          "text": line[:80]}))
        return False

    def _leading_letter(self, line: str, folded: str) -> Side | None:
        text = _ARROW.sub("", folded.strip())  # "--> B", "=> A"
        line = _ARROW.sub("", line.strip())
        for label in self.words.side_labels:
            if text.startswith(label + " ") or text.startswith(label + ":"):
                text = text[len(label):].lstrip(" :")
                break
        letter = _LEADING_LETTER.match(text)
        if letter:
            return Side(letter.group(1).upper())
        if _LEADING_B.match(line.strip()):
            return Side.B
        said = _LETTER_LAST.match(line.strip())  # "Definitely B", "I'd say A."
        return Side(said.group(1)) if said else None

    def _side_in_words(self, line: str) -> Side | None:
        """The side an in-person or virtual phrase under a question stands for, if plain."""
        formats = {stated.format for stated in formats_in(line, self.words).stated}
        return next(iter(formats)).favoured_side if len(formats) == 1 else None

    # -- lines of their own ----------------------------------------------------------------

    def _read_free(self, number: int, line: str) -> None:
        letters = _AND.sub(" ", line)  # "A, B, and A"
        if _POSITIONAL_LINE.match(letters):
            self.positional += [Side(letter.upper()) for letter in letters if letter in "AaBb"]
            return
        folded = fold(line)
        if (side := self._for_every_question(folded)) is not None:
            self.for_every.append((number, side))
            return
        found = self._row_answers(number, line, folded)
        option = None if found else self._option_row(_OPTION_LABEL.sub(r"\2", line))
        if option is not None:
            self.statements.append(_Statement((number, 0), option[0], option[1], OPTION_WORDING))
            return
        if found:
            return  # the rest of the line comments on its rows: "5A they like meeting in person"
        if _a_title(line) or (_CONTACT.search(line) and
                              len(re.findall(r"[^\W\d_]+", line)) <= _CONTACT_WORDS):
            return  # a signature's "Online Marketing Manager", "Virtual Events Ltd", phone
        formats = formats_in(line, self.words)
        self.statements += [_Statement((number, stated.offset), DECISION, stated.format,
                                       stated.rule) for stated in formats.stated]
        self.problems += [Problem(LEFT_OPEN, {"text": text}) for text in formats.left_open]
        if formats.stated or formats.left_open or self._polite(folded) or _a_name(line):
            return
        self.wordy = True
        if next(self.words.hedges.find(words_of(folded)), None):
            self.left_open.append(line[:80])

    def _for_every_question(self, folded: str) -> Side | None:
        """The one letter of "Both B", "A for all", "alle B", if the line says only that."""
        said = words_of(folded)
        letters = [word for word in said if word in ("a", "b")]
        rest = tuple(word for word in said if word not in ("a", "b"))
        if len(letters) != 1 or not next(self.words.every_question.find(rest), None):
            return None
        covered = {index for phrases in (self.words.every_question, self.words.courtesy)
                   for match in phrases.find(rest) for index in range(match.start, match.end)}
        return Side(letters[0].upper()) if len(covered) == len(rest) else None

    def _polite(self, folded: str) -> bool:
        """The line says nothing to read, and nothing that wanted to be read: thanks, a
        correction word alone, "I don't know"."""
        said = words_of(folded)
        return not said or self.words.courtesy.only(said) or self.words.unknown.only(said) \
            or self.words.corrections.only(said) or \
            next(self.words.polite.find(said), None) is not None  # "I'll get back to you"

    def _row_answers(self, number: int, line: str, folded: str) -> bool:
        """Take a line's row answers ("2A", "question 4: B") into statements; whether any
        attempt at one was found (a wrong one becomes a problem)."""
        found, before = False, len(self.statements)
        matches = [*self.rows.finditer(folded),
                   *(m for m in self.letters_first.finditer(folded)
                     if line[m.start("letter")].isupper())]  # "a for 3" is English
        for named in self.named[0].finditer(folded):  # "stakeholders – B", "Beteiligte: A"
            found = True
            self.statements.append(_Statement((number, named.start()),
                                              self.named[1][normal(named.group("name"))],
                                              Side(named.group("letter").upper()), NUMBERED))
        for both in _ROW_BOTH.finditer(folded):  # "6 both really", "6 either"
            found = True
            self.problems.append(Problem(LEFT_OPEN, {"text": line[both.start():][:80]}))
        for match in sorted(matches, key=lambda m: m.start()):
            if self._an_address(folded, match) or _an_article(line, match):
                continue
            found = True
            row, letter = int(match.group("number")), match.group("letter").upper()
            shown = line[match.start():match.end()].strip()
            if _EITHER_LETTER.match(folded, match.end()) or _DOUBTED.match(folded, match.end()):
                self.problems.append(Problem(LEFT_OPEN, {"text": line[match.start():][:80]}))
            elif letter not in "AB":
                self.problems.append(Problem(N_("“{text}”: answer with A or B"), {"text": shown}))
            elif not 1 <= row <= len(self.checklist):
                self.problems.append(Problem(N_("“{text}”: there is no question {number}"),
                                             {"text": shown, "number": str(row)}))
            else:
                self.statements.append(
                    _Statement((number, match.start()), row, Side(letter), NUMBERED))
        said = words_of(folded)
        for match in self.words.corrections.find(said):
            self.corrections.append((number, _word_offset(folded, match.start)))
        if found and next(self.words.hedges.find(said), None):  # "5B, not sure though"
            self.problems.append(Problem(LEFT_OPEN, {"text": line[:80]}))
            del self.statements[before:]
        return found

    def _an_address(self, folded: str, match: re.Match[str]) -> bool:
        """Whether a number and letter are part of an address: after an address word
        ("Suite 2A", "Stock 3B", "ext. 4B") or before one ("12B Baker Street")."""
        before = re.findall(r"\w+", folded[max(0, match.start() - 24):match.start()])
        after = re.findall(r"\w+", folded[match.end():match.end() + 40])[:2]
        return (bool(before) and normal(before[-1]) in self.words.address_words
                and not re.search(r":\s*$", folded[:match.start()])) or \
            any(normal(word) in self.words.address_words for word in after)

    def _option_row(self, text: str) -> tuple[int, Side] | None:
        """The row and side whose option wording text is, pasted back, if it is one."""
        wanted = normal(text).strip(" .!")
        if len(wanted) < 12:
            return None
        found = process.extractOne(wanted, self.wordings.options, scorer=fuzz.ratio,
                                   score_cutoff=_OPTION_SCORE)
        return self.wordings.option_rows[found[2]] if found else None

    # -- the outcome -----------------------------------------------------------------------

    def _settled(self) -> Reading:
        """The last word on each row and on the format, unless two differ without a
        correction between them: then neither is known, and the reply is unclear."""
        for number, side in self.for_every:
            if not self.quoted_rows:
                self.problems.append(Problem(WHICH_QUESTIONS))
            self.statements += [_Statement((number, 0), row, side, FOR_EVERY)
                                for row in self.quoted_rows]
        final: dict[int, _Statement] = {}
        conflicted: set[int] = set()
        for statement in sorted(self.statements, key=lambda s: s.order):
            earlier = final.get(statement.target)
            if statement.target in conflicted:
                continue
            if earlier is None or earlier.value == statement.value or any(
                    earlier.order < when < statement.order for when in self.corrections):
                final[statement.target] = statement
                continue
            conflicted.add(statement.target)
            del final[statement.target]
            self.problems.append(
                Problem(N_("the reply says both in person and virtual"))
                if statement.target == DECISION else
                Problem(N_("question {number} is answered both A and B"),
                        {"number": str(statement.target)}))
        if self.quoted_rows and len(self.positional) > len(self.quoted_rows):
            self.problems.append(Problem(MORE_LETTERS))
        decision = final.pop(DECISION, None)
        answers = {row: statement.value for row, statement in final.items()}
        nothing = not (answers or self.positional or decision)
        problems = list(self.problems)
        if self.wordy and nothing and not problems:
            problems += [Problem(LEFT_OPEN, {"text": text}) for text in self.left_open] or \
                [Problem(NOTHING_FOUND)]
        rules = {row: statement.rule for row, statement in final.items()}
        if decision:
            rules[DECISION] = decision.rule
        return Reading(
            answers={row: side for row, side in sorted(answers.items())
                     if isinstance(side, Side)},
            positional=tuple(self.positional),
            decision=decision.value if decision and isinstance(decision.value, Format) else None,
            unclear=bool(problems),
            problems=tuple(problems),
            rules=rules,
        )


def _a_title(line: str) -> bool:
    """Whether line is capitalised like a job or a company ("Remote Sales Lead"): three or
    more words of three letters or more, each starting with a capital, and no sentence's end.
    (Two are too few: "Por Zoom", "Video Please".)"""
    long_words = [word for word in re.findall(r"[^\W\d_][\w'’&-]*", line) if len(word) >= 3]
    return len(long_words) >= 3 and all(word[0].isupper() for word in long_words) and \
        not line.rstrip().endswith(("!", "?"))


def _a_name(line: str) -> bool:
    """Whether a line that states nothing is a signature's name: "Jordan Blake", "J. Doe"."""
    names = line.replace(".", " ").replace(",", " ").split()
    return 0 < len(names) <= _NAME_WORDS and all(
        name[:1].isupper() and name.replace("-", "").isalpha() for name in names) and \
        names not in (["A"], ["B"])


def _an_article(line: str, match: re.Match[str]) -> bool:
    """ "I have 2 a day": a lower-case "a" a space after a number, before a word, is
    English's article, not an answer."""
    between = line[match.start("number") + len(match.group("number")):match.start("letter")]
    after = line[match.end():match.end() + 2]
    return line[match.start("letter")] == "a" and between.isspace() and \
        bool(re.match(r"\s\w", after))


def _word_offset(folded: str, index: int) -> int:
    for count, match in enumerate(re.finditer(r"\w+", folded)):
        if count == index:
            return match.start()
    return len(folded)
