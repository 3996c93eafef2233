"""From a meeting to its annotation plan: detect, infer, merge the organiser's answers, score, plan.

This is the pure heart of the pipeline, shared by `assistant preview` and the service: given
the same meeting, history, answers and clock it always gives the same assessment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from assistant.annotate import AnnotationPlan, plan_annotation
from assistant.checklist import Checklist
from assistant.config import Config
from assistant.decisive import decisive_questions
from assistant.detect import CustomerMeetingDetector, Detection
from assistant.infer import Inference, Inferrer
from assistant.models import Format, HardFacts, Meeting, Recommendation, RowAnswer
from assistant.rendering import Renderer
from assistant.scoring import recommend


class EarlierAnswers(Protocol):
    """What organisers answered before (assistant.answer_memory reads it from the store)."""

    def about(self, domains: Sequence[str]) -> Mapping[str, RowAnswer]:
        """Rows remembered about the customers at these domains."""
        ...

    def odds(self, organiser: str) -> Mapping[str, float]:
        """Each row's chance of an A answer from this organiser."""
        ...


@dataclass(frozen=True)
class Assessment:
    meeting: Meeting
    detection: Detection
    inference: Inference | None = None  # None: not a customer meeting, nothing to infer
    questions: tuple[int, ...] = ()  # rows still worth asking the organiser (see decisive)
    recommendation: Recommendation | None = None
    plan: AnnotationPlan | None = None
    # Rows known without this meeting's organiser answers: the calendar's, config's and
    # remembered answers, each where it wins; what the question email says it knows.
    told: Mapping[str, RowAnswer] = field(default_factory=dict)

    @property
    def default_format(self) -> Format | None:
        """The format as it stands: what the assistant decides without an answer."""
        return self.recommendation.format if self.recommendation else None


class Assessor:
    def __init__(self, config: Config, checklist: Checklist, renderer: Renderer) -> None:
        self.config = config
        self.checklist = checklist
        self.renderer = renderer
        self.detector = CustomerMeetingDetector(config.organisation.domains, config.detection)
        self.inferrer = Inferrer(checklist, config, self.detector)

    def assess(
        self,
        meeting: Meeting,
        *,
        now: datetime,
        history: Sequence[Meeting] | None = None,
        organiser_answers: Mapping[str, RowAnswer] | None = None,
        organiser_facts: HardFacts = HardFacts(),
        earlier: EarlierAnswers | None = None,
        note_language: str | None = None,
    ) -> Assessment:
        """Assess meeting. Where several sources speak of a row, this meeting's answer wins,
        then the admin's configured facts, then answers remembered about the customer, then
        what the calendar tells. earlier answers also order the rows to ask (even odds
        without them). The plan's note is written in note_language, by default the
        customers' (Config.customer_language).

        The plan is None for a meeting that is not a customer meeting, and for one whose
        note a person removed or edited after the assistant wrote it.
        """
        detection = self.detector.detect(meeting)
        if not detection.is_customer_meeting:
            return Assessment(meeting, detection)
        inference = self.inferrer.infer(meeting, detection, history, now)
        organiser_answers = organiser_answers or {}
        remembered = earlier.about(detection.customer_domains) if earlier else {}
        told = {**inference.answers,
                **{key: answer for key, answer in remembered.items()
                   if key not in inference.configured}}
        answers = {**told, **organiser_answers}
        hard = HardFacts(
            organiser_choice=organiser_facts.organiser_choice,
            on_site_equipment=organiser_facts.on_site_equipment,
            travel_ruled_out=organiser_facts.travel_ruled_out or inference.hard.travel_ruled_out,
        )
        recommendation = recommend(self.checklist, answers, hard)
        plan = self._plan(meeting, recommendation, note_language or
                          self.config.customer_language(detection.customer_domains))
        questions = self._questions(answers, hard, meeting, earlier)
        return Assessment(meeting, detection, inference, questions, recommendation, plan, told)

    def _questions(self, answers: Mapping[str, RowAnswer], hard: HardFacts, meeting: Meeting,
                   earlier: EarlierAnswers | None) -> tuple[int, ...]:
        most = self.config.policy.max_questions
        questions = decisive_questions(self.checklist, answers, hard, max_questions=most)
        if not questions or earlier is None:
            return questions  # settled: which rows would be likeliest to turn it is moot
        return decisive_questions(self.checklist, answers, hard, max_questions=most,
                                  odds_of_a_by_row=earlier.odds(meeting.organizer.email))

    def plan_decided(self, meeting: Meeting, decided: Recommendation,
                     language: str | None = None) -> AnnotationPlan | None:
        """The plan that writes an earlier decision into meeting as it reads now, its note in
        language, by default the customers'.

        A decision stands once made (the organiser was told it): a meeting that moves or
        changes gets the same format and reasons, fitted anew. None, as in assess, for a
        meeting that is no longer a customer meeting or whose note a person took over.
        """
        detection = self.detector.detect(meeting)
        if not detection.is_customer_meeting:
            return None
        return self._plan(meeting, decided, language or
                          self.config.customer_language(detection.customer_domains))

    def _plan(self, meeting: Meeting, recommendation: Recommendation,
              language: str) -> AnnotationPlan | None:
        return plan_annotation(
            meeting,
            recommendation,
            self.renderer,
            organisation_name=self.config.organisation.name,
            virtual_minutes=self.config.policy.virtual_minutes,
            language=language,
        )
