"""What the workbench shows of a question: time left, SLA badges, the live rows and the timeline."""

import hashlib
import json
from datetime import datetime, timedelta

from django.utils.html import format_html

from consultations import sla
from consultations.models import Escalation, Question, ReplyKind

QUEUE_STATE_LABELS = {
    sla.ON_TRACK: "On track",
    sla.AT_RISK: "At risk",
    sla.BREACHED: "Breached",
    sla.PAUSED: "Waiting for the patient",
}


# --- Plain helpers (tested directly) ------------------------------------------------


def describe_time_left(left: timedelta | None) -> str:
    """ "2 h 05 min left" / "overdue by 12 min": readable without the colour."""
    if left is None:
        return ""
    minutes = int(abs(left).total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    amount = f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
    return f"{amount} left" if left >= timedelta(0) else f"overdue by {amount}"


def sla_badge(question: Question, now: datetime):
    """The time-left cell: a coloured badge whose words carry the state too."""
    state = sla.sla_state(question, now)
    label = QUEUE_STATE_LABELS.get(state) or sla.STATE_LABELS.get(state, state)
    detail = "" if state == sla.PAUSED else describe_time_left(sla.time_left(question, now))
    return format_html(
        '<span class="sla-badge sla-{}">{}</span> <span class="sla-detail">{}</span>', state, label, detail
    )


def running_clock(question: Question) -> tuple[datetime, datetime] | None:
    """(warn_at, due_at) of a clock that is running now, for the page to count down; else None."""
    if question.clock_due_at is None or question.clock_paused_at is not None or question.clock_warn_at is None:
        return None
    return question.clock_warn_at, question.clock_due_at


def live_sla_badge(question: Question, now: datetime):
    """The queue's time-left cell: the badge, with the times the workbench script counts
    down from (data attributes only: the CSP allows no inline script or style)."""
    clock = running_clock(question)
    times = (
        format_html(' data-warn-at="{}" data-due-at="{}"', clock[0].isoformat(), clock[1].isoformat()) if clock else ""
    )
    return format_html(
        '<span class="sla-live" data-question="{}" data-sig="{}"{}>{}</span>',
        question.pk,
        live_row(question, now)["sig"],
        times,
        sla_badge(question, now),
    )


def live_row(question: Question, now: datetime) -> dict:
    """What the live queue tells the page about one row: no more than the row shows."""
    state = sla.sla_state(question, now)
    clock = running_clock(question)
    row = {
        "id": question.pk,
        "title": question.title,
        "follow_up": question.is_follow_up,
        "state": state,
        "state_label": QUEUE_STATE_LABELS.get(state) or sla.STATE_LABELS.get(state, state),
        "warn_at": clock[0].isoformat() if clock else None,
        "due_at": clock[1].isoformat() if clock else None,
        "urgent": question.is_urgent,
        "claimed": None if question.claimed_by_id is None else ("you" if question.claimed_by_viewer else "other"),
        "status": question.status,
    }
    # The page swaps a row only when its signature changes (so a ticked box stays ticked).
    row["sig"] = hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()[:16]
    return row


def live_etag(rows: list[dict], extra) -> str:
    """Changes when anything the rows show changes (a state crossing included), not as time passes."""
    digest = hashlib.sha256(json.dumps([rows, extra], sort_keys=True).encode()).hexdigest()[:32]
    return f'"{digest}"'


def question_timeline(question: Question) -> list[tuple[datetime, str]]:
    """What happened to a question, oldest first, in words safe to show any doctor."""
    events = [(question.submitted_at, f"{question.patient_label} asked the question.")]
    for reply in question.replies.select_related("doctor"):
        if reply.kind == ReplyKind.FOLLOW_UP:
            events.append((reply.created_at, f"{question.patient_label} wrote a follow-up."))
            continue
        who = reply.doctor.display_name if reply.doctor else "A doctor"
        if reply.kind == ReplyKind.INFO_REQUEST:
            events.append((reply.created_at, f"{who} asked for more information."))
        else:
            events.append((reply.created_at, f"{who} answered."))
    for escalation in Escalation.objects.filter(question=question).order_by("created_at"):
        events.append((escalation.created_at, f"Escalation: {escalation.get_level_display()}."))
    if question.closed_at:
        events.append((question.closed_at, "The question was closed."))
    return sorted(events, key=lambda event: event[0])
