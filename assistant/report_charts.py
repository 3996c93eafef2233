"""The team report's charts, drawn with matplotlib as SVG for the HTML report and the admin page.

Figures are made with matplotlib.figure.Figure directly, never pyplot: no global figure
state, so several web requests may draw at once, and nothing needs a display (SVG output
uses no GUI backend). Text is drawn as paths, so a chart looks the same in every browser
and mail client; each SVG carries its alt text (role="img", aria-label and a <title>).
Colours are Okabe and Ito's palette, which readers with colour-blindness tell apart too.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from html import escape

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from assistant.team_report import TeamReport, Week, hours_words

IN_PERSON, VIRTUAL = "#E69F00", "#0072B2"
OVERRIDE = "#D55E00"
ANSWERED, INFERRED, DEFAULTED, UNKNOWN = "#009E73", "#56B4E9", "#CC79A7", "#C8C8C8"
INK, MUTED, GRID = "#222222", "#666666", "#E6E6E6"
WIDTH, HEIGHT = 7.5, 3.4  # inches: about 720 x 330 pixels on a web page
NO_DATA = "no meetings yet"
MAX_LABELLED_WEEKS = 16  # more weeks than this and the numbers over the bars would overlap
_LABEL_BOX = {"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none"}


@dataclass(frozen=True)
class Chart:
    title: str
    svg: str  # an inline <svg> element, without the XML prolog, as wide as its container
    alt_text: str


def charts(report: TeamReport) -> list[Chart]:
    """Every chart of the report, in reading order; empty data draws a 'no meetings yet'."""
    return [Chart(title, _svg(figure, alt), alt) for title, figure, alt in figures(report)]


def figures(report: TeamReport) -> list[tuple[str, Figure, str]]:
    """The charts as matplotlib figures (title, figure, alt text): for PNGs, or tests."""
    drawers: Sequence[Callable[[TeamReport], tuple[str, Figure, str]]] = (
        formats_by_week, answering, rows_filled, minutes_given_back, overrides)
    return [draw(report) for draw in drawers]


# -- the charts ----------------------------------------------------------------------------------


def formats_by_week(report: TeamReport) -> tuple[str, Figure, str]:
    title = "In person or virtual, by week"
    figure, ax = _figure()
    m = report.meetings
    if not m.decided:
        return title, _empty(figure, ax, title), f"{title}: {NO_DATA}."
    weeks = report.weeks
    x = range(len(weeks))
    in_person = [w.in_person for w in weeks]
    virtual = [w.virtual for w in weeks]
    ax.bar(x, in_person, color=IN_PERSON, label="in person", width=0.7)
    ax.bar(x, virtual, bottom=in_person, color=VIRTUAL, label="virtual", width=0.7)
    for i, week in enumerate(weeks if len(weeks) <= MAX_LABELLED_WEEKS else ()):
        if week.decided:
            ax.annotate(f"{round(100 * week.virtual / week.decided)}%", (i, week.decided),
                        xytext=(0, 3), textcoords="offset points", ha="center", va="bottom",
                        fontsize=8, color=MUTED, bbox=_LABEL_BOX)
    _week_axis(ax, weeks)
    _today(ax, report)
    ax.set_ylabel("meetings")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, max(w.decided for w in weeks) * 1.18)
    ax.legend(loc="upper left", frameon=False, ncols=2, fontsize=9)
    share = round(100 * (m.virtual_share or 0))
    labelled = len(weeks) <= MAX_LABELLED_WEEKS
    _titles(figure, ax, title, f"{m.virtual:,} of {m.decided:,} decided meetings virtual "
                               f"({share}%)" + ("; the % over each bar is that week's virtual "
                                                "share" if labelled else ""))
    busiest = max(weeks, key=lambda w: w.decided)
    alt = (f"{title}: stacked bars per week. {m.in_person:,} in person and {m.virtual:,} virtual "
           f"({share}% virtual) over {len(weeks)} weeks; the busiest week, {busiest.label}, "
           f"had {busiest.in_person} in person and {busiest.virtual} virtual.")
    return title, figure, alt


def answering(report: TeamReport) -> tuple[str, Figure, str]:
    title = "How often and how fast organisers answer"
    a = report.answering
    figure = Figure(figsize=(WIDTH, HEIGHT), layout="constrained")
    rate_ax, time_ax = figure.subplots(1, 2, width_ratios=(3, 2))
    for ax in (rate_ax, time_ax):
        _style(ax)
    if not a.asked:
        time_ax.set_visible(False)
        return title, _empty(figure, rate_ax, title), f"{title}: {NO_DATA}."
    weeks = report.weeks
    rates = [100 * (w.answer_rate or 0) for w in weeks]
    rate_ax.bar(range(len(weeks)), rates, color=ANSWERED, width=0.7)
    if len(weeks) <= 8:  # room for each week's "answered/asked" over its bar
        for i, week in enumerate(weeks):
            if week.asked:
                rate_ax.annotate(f"{week.answered}/{week.asked}", (i, rates[i]), xytext=(0, 3),
                                 textcoords="offset points", ha="center", va="bottom",
                                 fontsize=7.5, color=MUTED)
    _week_axis(rate_ax, weeks, labels=7)
    rate_ax.set_ylim(0, 112)
    rate_ax.set_yticks([0, 25, 50, 75, 100])
    rate_ax.yaxis.set_major_formatter(PercentFormatter())
    rate_ax.set_ylabel("answered (of asked)")
    rate_ax.set_title("answer rate by week", fontsize=9.5, color=MUTED, loc="left")

    labels = [label for label, _ in a.buckets]
    counts = [count for _, count in a.buckets]
    time_ax.barh(labels, counts, color=ANSWERED, height=0.65)
    time_ax.invert_yaxis()
    time_ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    time_ax.set_xlabel("answers")
    time_ax.set_title("time from question to answer", fontsize=9.5, color=MUTED, loc="left")
    time_ax.grid(axis="x", color=GRID)
    time_ax.grid(axis="y", visible=False)
    for i, count in enumerate(counts):
        if count:
            time_ax.annotate(str(count), (count, i), xytext=(3, 0), textcoords="offset points",
                             va="center", fontsize=8, color=MUTED)
    time_ax.set_xlim(0, max(max(counts), 1) * 1.2)
    rate = round(100 * (a.answer_rate or 0))
    speed = (f"; median {hours_words(a.median_hours)}, 90% within {hours_words(a.p90_hours)}"
             if a.median_hours is not None else "")
    _titles(figure, rate_ax, title, f"{a.answered:,} of {a.asked:,} questions answered "
                                    f"({rate}%){speed}")
    alt = f"{title}: {a.answered:,} of {a.asked:,} answered ({rate}%){speed}."
    return title, figure, alt


def rows_filled(report: TeamReport) -> tuple[str, Figure, str]:
    title = "Which checklist rows the calendar answers"
    figure, ax = _figure(height=HEIGHT + 0.9)
    decided = report.meetings.decided
    if not decided:
        return title, _empty(figure, ax, title), f"{title}: {NO_DATA}."
    rows = report.rows
    labels = [row.label for row in rows]
    left = [0.0] * len(rows)
    parts = (("inferred from the calendar", INFERRED, "inferred"),
             ("set in config", DEFAULTED, "defaulted"),
             ("answered by the organiser", ANSWERED, "answered"),
             ("unknown", UNKNOWN, "unknown"))
    for name, colour, field in parts:
        shares = [100 * getattr(row, field) / decided for row in rows]
        ax.barh(labels, shares, left=left, color=colour, label=name, height=0.7)
        left = [a + b for a, b in zip(left, shares, strict=True)]
    for i, row in enumerate(rows):
        ax.annotate(f"asked {round(100 * row.asked / decided)}%", (100, i), xytext=(6, 0),
                    textcoords="offset points", va="center", fontsize=8, color=MUTED)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.xaxis.set_major_formatter(PercentFormatter())
    ax.set_xlabel(f"share of the {decided:,} decided meetings")
    ax.grid(axis="y", visible=False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=4, frameon=False,
              fontsize=8.5)
    best = max(rows, key=lambda row: row.inferred + row.defaulted)
    _titles(figure, ax, title, f"how each row was filled; row {best.number} ({best.key}) is "
                               "filled without asking most often")
    summary = "; ".join(f"row {r.number} {r.key}: {r.inferred} inferred, {r.defaulted} from "
                        f"config, {r.answered} answered, {r.unknown} unknown, asked {r.asked}"
                        for r in rows)
    return title, figure, f"{title}, of {decided:,} decided meetings: {summary}."


def minutes_given_back(report: TeamReport) -> tuple[str, Figure, str]:
    title = "Minutes given back by shorter virtual meetings"
    figure, ax = _figure()
    given = report.given_back
    if not report.meetings.decided:
        return title, _empty(figure, ax, title), f"{title}: {NO_DATA}."
    weeks = report.weeks
    in_hours = given.minutes >= 600
    unit = "hours" if in_hours else "minutes"
    values = [w.minutes_given_back / (60 if in_hours else 1) for w in weeks]
    ax.bar(range(len(weeks)), values, color=ANSWERED, width=0.7)
    for i, value in enumerate(values if len(weeks) <= MAX_LABELLED_WEEKS else ()):
        if value:
            ax.annotate(f"{value:.0f}" if not in_hours else f"{value:.1f}", (i, value),
                        xytext=(0, 3), textcoords="offset points", ha="center", va="bottom",
                        fontsize=8, color=MUTED, bbox=_LABEL_BOX)
    _week_axis(ax, weeks)
    _today(ax, report)
    ax.set_ylabel(unit)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, max(max(values) * 1.2, 1))
    total = f"{given.minutes:,} minutes" + (f" ({given.minutes / 60:,.0f} hours)" if in_hours
                                            else "")
    _titles(figure, ax, title, f"{total} from {given.meetings:,} shortened meetings: their "
                               "length before minus their length now")
    return title, figure, f"{title}: {total} in all, from {given.meetings:,} meetings."


def overrides(report: TeamReport) -> tuple[str, Figure, str]:
    title = "Where people overrode the assistant"
    figure, ax = _figure(height=HEIGHT - 0.4)
    if report.empty:
        return title, _empty(figure, ax, title), f"{title}: {NO_DATA}."
    o = report.overrides
    bars = (("organiser chose the format", o.format_chosen),
            ("... against the checklist's count", o.chose_against_count),
            ("inferred rows the organiser answered", o.rows_overwritten),
            ("notes edited by a person", o.notes_edited),
            ("lengths set back by a person", o.lengths_restored))
    ax.barh([b[0] for b in bars], [b[1] for b in bars], color=OVERRIDE, height=0.65)
    for i, (_, count) in enumerate(bars):
        ax.annotate(str(count), (count, i), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=8.5, color=MUTED)
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0, max(max(b[1] for b in bars), 1) * 1.15)
    ax.set_xlabel("times")
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", color=GRID)
    _titles(figure, ax, title, f"how often, over the {report.meetings.detected:,} meetings "
                               "of this report")
    alt = f"{title}: " + "; ".join(f"{name.lstrip('. ')}: {count}" for name, count in bars)
    return title, figure, alt + "."


# -- drawing helpers -----------------------------------------------------------------------------


def _figure(height: float = HEIGHT) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(WIDTH, height), layout="constrained")
    ax = figure.subplots()
    _style(ax)
    return figure, ax


def _style(ax: Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.spines[["left", "bottom"]].set_color("#999999")
    ax.tick_params(colors=INK, labelsize=8.5)
    ax.set_axisbelow(True)
    ax.grid(axis="y", color=GRID)


def _titles(figure: Figure, ax: Axes, title: str, subtitle: str) -> None:
    """The title in bold and, on the line below it, what the chart shows in one sentence.

    The title's second (empty) line makes constrained layout keep room for the subtitle.
    """
    top = 0.98  # where matplotlib puts a title it lays out itself (y given: not laid out)
    figure.suptitle(f"{title}\n", x=0.01, ha="left", fontsize=12, fontweight="bold",
                    color=INK)
    line = 12 * 1.2 / (figure.get_figheight() * 72)  # one 12-point line, in figure fractions
    figure.text(0.01, top - line * 1.05, subtitle, ha="left", va="top", fontsize=9,
                color=MUTED)


def _empty(figure: Figure, ax: Axes, title: str) -> Figure:
    ax.set_axis_off()
    ax.text(0.5, 0.5, NO_DATA, ha="center", va="center", fontsize=13, color=MUTED,
            transform=ax.transAxes)
    figure.suptitle(title, x=0.01, ha="left", fontsize=12, fontweight="bold", color=INK)
    return figure


def _week_axis(ax: Axes, weeks: Sequence[Week], labels: int = 14) -> None:
    """Weeks by their Monday ('2 Mar'), at most labels of them, so that none overlap."""
    step = max(1, -(-len(weeks) // labels))
    ax.set_xticks(range(0, len(weeks), step))
    ax.set_xticklabels([_day(w.start) for w in weeks][::step])
    ax.set_xlim(-0.6, len(weeks) - 0.4)
    ax.set_xlabel("week of the meeting (from Monday)", fontsize=8.5, color=MUTED)


def _today(ax: Axes, report: TeamReport) -> None:
    """A dashed line at today, when weeks ahead are shown (those meetings are still to come)."""
    today = report.generated_at.astimezone(UTC)
    first = report.weeks[0].start if report.weeks else today.date()
    if not report.weeks or report.weeks[-1].start + timedelta(days=7) <= today.date():
        return
    position = (today.date() - first).days / 7 + today.hour / (24 * 7) - 0.5
    ax.axvline(position, color=MUTED, linestyle="--", linewidth=0.9, zorder=0.8)
    ax.annotate("today", (position, 1), xycoords=("data", "axes fraction"), xytext=(3, -2),
                textcoords="offset points", va="top", fontsize=8, color=MUTED)


def _day(day: date) -> str:
    return f"{day.day} {day:%b}"


_PROLOG = re.compile(r"^.*?(?=<svg\b)", re.S)
_SIZE = re.compile(r'<svg([^>]*?) width="[^"]*" height="[^"]*"')


def _svg(figure: Figure, alt: str) -> str:
    """The figure as an inline SVG element that fills its container's width."""
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None})
    text = _PROLOG.sub("", out.getvalue(), count=1)
    label = escape(alt, quote=True)
    text = _SIZE.sub(lambda m: f'<svg{m.group(1)} width="100%" role="img" aria-label="{label}"',
                     text, count=1)
    head_end = text.index(">") + 1
    return (text[:head_end] + f"<title>{escape(alt)}</title>" + text[head_end:]).strip()
