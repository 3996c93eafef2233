"""How the CLI shows results: stable JSON for scripts, and short readable text for people."""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import suppress
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from assistant import resources
from assistant.annotate import AnnotationPlan
from assistant.assess import Assessment
from assistant.checklist import Checklist
from assistant.config import Config, files_named, secrets_named
from assistant.language import phrases
from assistant.models import DecidedBy, Format, Meeting, Recommendation, Totals
from assistant.replies import DECISION, Reading
from assistant.reply_mail import ReplyEmail
from assistant.secret_files import readable_by_others


def recommendation_json(result: Recommendation, *, phrases_too: bool = True) -> dict[str, Any]:
    """result as JSON: reasons in English; with phrases_too, also each reason as it can be said
    in any language (how the service records a decision; the CLI prints without)."""
    data = {
        "format": result.format.value,
        "totals": {"in_person": result.totals.in_person, "virtual": result.totals.virtual},
        "decided_by": result.decided_by.value,
        "reasons": list(result.reasons),
        "invite_reasons": list(result.invite_reasons),
        "rows": {
            "answered": list(result.answered),
            "inferred": list(result.inferred),
            "defaulted": list(result.defaulted),
            "remembered": list(result.remembered),
            "unknown": list(result.unknown),
        },
    }
    if phrases_too:
        data["phrases"] = {"reasons": [phrases.to_json(text) for text in result.reasons],
                           "invite_reasons": [phrases.to_json(text)
                                              for text in result.invite_reasons]}
    return data


def recommendation_from_json(detail: Mapping[str, Any]) -> Recommendation | None:
    """The recommendation that recommendation_json wrote; None when the JSON lacks the invite's
    reasons, as the records of earlier versions of the assistant do. Reasons recorded without
    their phrases (earlier versions, too) stay English wherever they are shown."""
    if "invite_reasons" not in detail:
        return None
    rows = detail["rows"]
    said = detail.get("phrases") or {}
    return Recommendation(
        format=Format(detail["format"]),
        totals=Totals(**detail["totals"]),
        decided_by=DecidedBy(detail["decided_by"]),
        reasons=_reasons(detail["reasons"], said.get("reasons")),
        invite_reasons=_reasons(detail["invite_reasons"], said.get("invite_reasons")),
        answered=tuple(rows["answered"]),
        inferred=tuple(rows["inferred"]),
        defaulted=tuple(rows["defaulted"]),
        remembered=tuple(rows.get("remembered", ())),  # none before answers were remembered
        unknown=tuple(rows["unknown"]),
    )


def _reasons(english: list[str], said: Any) -> tuple[str, ...]:
    """The reasons as phrases where they were recorded with them, else as the English."""
    if isinstance(said, list) and len(said) == len(english):
        # Written by a version whose phrases this one cannot read: the English stands.
        with suppress(ValueError):
            return tuple(phrases.from_json(text) for text in said)
    return tuple(english)


def recommendation_text(result: Recommendation, checklist: Checklist) -> str:
    totals = f"{result.totals.in_person} in person, {result.totals.virtual} virtual"
    lines = [
        f"Recommendation: {result.format.words} "
        f"(decided by {result.decided_by.value.replace('_', ' ')}; {totals})",
        *(f"  - {reason}" for reason in result.reasons),
    ]
    for label, keys in (
        ("Answered by the organiser", result.answered),
        ("Inferred from the calendar", result.inferred),
        ("Set in config", result.defaulted),
        ("Remembered from earlier answers", result.remembered),
        ("Unknown", result.unknown),
    ):
        if keys:
            numbers = ", ".join(str(checklist.row(key).number) for key in keys)
            lines.append(f"{label}: {numbers}")
    return "\n".join(lines)


def assessment_json(assessment: Assessment) -> dict[str, Any]:
    inference = assessment.inference
    return {
        "customer_meeting": assessment.detection.is_customer_meeting,
        "why": assessment.detection.why,
        "customer_domains": list(assessment.detection.customer_domains),
        "inferred": {
            key: {"answer": answer.side.value, "why": answer.why, "source": answer.provenance.value}
            for key, answer in (inference.answers.items() if inference else ())
            if answer.side is not None
        },
        "questions": list(assessment.questions),
        "recommendation": (
            recommendation_json(assessment.recommendation, phrases_too=False)
            if assessment.recommendation else None
        ),
        "changes": _changes_json(assessment.plan) if assessment.plan else None,
    }


def _changes_json(plan: AnnotationPlan) -> dict[str, Any]:
    return {
        "description": plan.description,
        "end": plan.end.isoformat() if plan.end else None,
        "add_video_link": plan.add_video_link,
    }


def assessment_text(assessment: Assessment, checklist: Checklist) -> str:
    meeting = assessment.meeting
    detection = assessment.detection
    lines = [
        f"{meeting.title or '(no title)'}: {_when(meeting)}",
        f"Customer meeting: {'yes' if detection.is_customer_meeting else 'no'} ({detection.why})",
    ]
    if assessment.inference is None or assessment.recommendation is None:
        lines.append("Nothing would be asked or changed.")
        return "\n".join(lines)
    inferred = [
        f"  {row.number:>2} {row.key:<13} {answer.side.value}  {answer.why}"
        for row in checklist
        if (answer := assessment.inference.answers.get(row.key)) and answer.side is not None
    ]
    lines += ["", "Known without asking:", *(inferred or ["  nothing"])]
    asked = (", ".join(map(str, assessment.questions))
             + " (the fewest rows whose answers could change the format)"
             if assessment.questions else
             "nothing: no answers to the open rows could change the format, so it would "
             "decide at once and tell the organiser how to change it")
    lines += [f"Would ask the organiser: {asked}", ""]
    lines.append(recommendation_text(assessment.recommendation, checklist))
    if assessment.plan is not None:
        lines += ["", *_before_after(meeting, assessment.plan)]
    return "\n".join(lines)


def _before_after(meeting: Meeting, plan: AnnotationPlan) -> list[str]:
    lines = ["Invite before:", f"  ends {_clock(meeting.end)}"]
    lines += _quoted(meeting.description)
    lines += ["Invite after:"]
    span = meeting.timed_span
    if plan.end is not None and span is not None:
        minutes = int((plan.end - span[0]).total_seconds() // 60)
        lines.append(f"  ends {_clock(plan.end)} ({minutes} minutes)")
    else:
        lines.append(f"  ends {_clock(meeting.end)} (unchanged)")
    if plan.add_video_link:
        lines.append("  a video link would be added")
    lines += _quoted(plan.description)
    return lines


def _quoted(description: str) -> list[str]:
    if not description:
        return ["  | (empty description)"]
    return [f"  | {line}" for line in description.splitlines()]


def _when(meeting: Meeting) -> str:
    if meeting.all_day:
        return f"all day {meeting.start}"
    zone = f" ({meeting.time_zone})" if meeting.time_zone else ""
    return f"{meeting.start:%a %d %b %Y %H:%M}-{_clock(meeting.end)}{zone}"


def _clock(moment: datetime | date) -> str:
    return f"{moment:%H:%M}" if isinstance(moment, datetime) else str(moment)


def config_json(path: Path, config: Config, checklist: Checklist) -> dict[str, Any]:
    return {
        "ok": True,
        "file": str(path),
        "organisation_domains": list(config.organisation.domains),
        "google_calendars": len(config.google.calendars),
        "microsoft_calendars": len(config.microsoft.calendars),
        "customers": len(config.customers),
        "checklist": str(config.checklist or resources.default_checklist_path()),
        "checklist_rows": len(checklist),
        "database": _database(config),
        "secrets": {variable: bool(os.environ.get(variable))
                    for variable in secrets_named(config)},
        "ready": not not_ready(config),
        "admin_page_open": bool(os.environ.get(config.service.admin_password_env)),
        "dry_run": config.policy.dry_run,
        "files": {key: {"path": str(path), "exists": path.exists(),
                        "owner_only": path.exists() and not readable_by_others(path)}
                  for key, path in files_named(config).items()},
    }


def config_text(path: Path, config: Config, checklist: Checklist) -> str:
    admin = config.service.admin_password_env
    checklist_source = str(config.checklist) if config.checklist else "the shipped one"
    missing = not_ready(config)
    headline = f"{path}: OK" + (f", but `assistant run` would stop here: {missing}" if missing
                                 else "")
    return "\n".join(
        [
            headline,
            f"  organisation: {config.organisation.name} "
            f"({', '.join(config.organisation.domains)})",
            f"  calendars: {len(config.google.calendars)} Google, "
            f"{len(config.microsoft.calendars)} Microsoft",
            f"  customers with facts: {len(config.customers)}",
            f"  a virtual hour becomes {config.policy.virtual_minutes} minutes",
            f"  checklist: {len(checklist)} rows, {checklist_source}",
            f"  state: {_database(config)}",
            *(f"  secret {variable} ({key}): "
              f"{'set' if os.environ.get(variable) else 'NOT SET in this environment'}"
              for variable, key in secrets_named(config).items()),
            f"  admin page: {'open with' if os.environ.get(admin) else 'closed, no'} password in "
            f"{admin}",
            *(["  dry run: no invite is written and no email sent"]
              if config.policy.dry_run else []),
            *(f"  {key}: {path}{_file_problem(path)}"
              for key, path in files_named(config).items()),
        ]
    )


def not_ready(config: Config) -> str:
    """What this environment lacks for the config to run ('' when nothing), in words."""
    secrets = sum(1 for variable in secrets_named(config) if not os.environ.get(variable))
    files = sum(1 for path in files_named(config).values() if not path.exists())
    open_files = sum(1 for path in files_named(config).values()
                     if path.exists() and readable_by_others(path))
    lacking = [f"{secrets} secret(s) not set" if secrets else "",
               f"{files} file(s) not found" if files else "",
               f"{open_files} file(s) others may read" if open_files else ""]
    return " and ".join(words for words in lacking if words) + (" (below)" if any(lacking)
                                                                else "")


def _file_problem(path: Path) -> str:
    if not path.exists():
        return " (NOT FOUND)"
    if readable_by_others(path):
        return f" (others may read it: run `chmod 600 {path}`)"
    return ""


def _database(config: Config) -> str:
    return make_url(config.service.database_url).render_as_string(hide_password=True)


def reply_json(reply: ReplyEmail, reading: Reading, checklist: Checklist) -> dict[str, Any]:
    """The reading as `parse-reply --json` prints it; `unreadable` (why) only for mail that
    could not be read at all, which the service sets aside."""
    return {
        "from": reply.sender,
        "token": reply.token,
        "auto_reply": reply.auto_reply,
        "answers": {checklist.find(number).key: side.value
                    for number, side in sorted(reading.answers.items())},
        "positional": [side.value for side in reading.positional],
        "decision": reading.decision.value if reading.decision else None,
        "unclear": reading.unclear,
        "problems": [str(problem) for problem in reading.problems],
        "read_by": {("decision" if target == DECISION else checklist.find(target).key): rule
                    for target, rule in reading.rules.items()},
        **({"unreadable": reply.unreadable} if reply.unreadable else {}),
    }


def _rule_words(rule: str) -> str:
    """'by its row number', 'under its question', 'in words': how an answer was read."""
    return {"row number": "by its row number", "option wording": "from its option's wording",
            "video tool": "from a video tool's name"}.get(rule, rule)


def reply_text(reply: ReplyEmail, reading: Reading, checklist: Checklist) -> str:
    lines = [f"from: {reply.sender or '(no sender)'}",
             f"token: {reply.token or '(none: the reply would be ignored)'}"]
    if reply.unreadable:
        return "\n".join([*lines, f"unreadable: {reply.unreadable}; the service would set it "
                                  "aside in the inbox's failed folder"])
    if reply.auto_reply:
        return "\n".join([*lines, "an automatic reply or bounce: never answered"])
    for number, side in sorted(reading.answers.items()):
        row = checklist.find(number)
        lines.append(f"{number:>2}. {row.key}: {side.value} ({row.wording(side)}); "
                     f"read {_rule_words(reading.rules.get(number, ''))}")
    if reading.positional:
        lines.append("in the order asked: " + " ".join(side.value for side in reading.positional))
    if reading.decision:
        lines.append(f"decision: {reading.decision.words}; read "
                     f"{_rule_words(reading.rules.get(DECISION, ''))}")
    if reading.unclear:
        lines += ["unclear, a clarification would be sent:",
                  *(f"  - {problem}" for problem in reading.problems)]
    elif reading.empty:
        lines.append("nothing to read (no answer, nothing unclear)")
    return "\n".join(lines)
