"""Patients' pages: ask, the success page, my questions, the question page and its
actions, and the access-checked attachment download shared with doctors and staff.

Rules live in `services`, `access` and `uploads`; these views only translate
between HTTP and those functions.
"""

import functools
import io
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_POST

from consultations import access, cover_cache, credits, drafts, links, patient_list, pictures, services
from consultations.forms import AskForm, FollowUpForm, QuestionDraftForm, RatingForm
from consultations.models import Question, QuestionStatus, Specialty
from consultations.red_flags import RED_FLAG_PHRASES, find_red_flags
from portal import ratelimit, times
from portal.ratelimit import rate_limited
from portal.times import LONG_DATE_TIME, format_time

logger = logging.getLogger(__name__)


# --- The patient's view of the guarantee clock ---------------------------------------


def duration_text(seconds: int) -> str:
    """A short, human duration: "2 d 3 h", "3 h 12 min", "4 min 05 s", "9 s".

    static/portal/countdown.js formats the live countdown the same way.
    """
    days, rest = divmod(max(seconds, 0), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def countdown_text(remaining: timedelta) -> str:
    seconds = int(remaining.total_seconds())
    if seconds >= 0:
        return f"answer due in {duration_text(seconds)}"
    return f"overdue by {duration_text(-seconds)}"


@dataclass(frozen=True)
class PatientClock:
    """What the patient sees about the guarantee: a live countdown or a plain state."""

    state: str  # running | late | paused | answered | closed
    text: str
    due_at: datetime | None = None

    @property
    def due_iso(self) -> str:
        return self.due_at.isoformat() if self.due_at else ""


# A question in these states shows a clock its row alone decides, whatever the time
# (the early "my questions" page, consultations/early_list.py, relies on it).
FIXED_CLOCK_STATUSES = (QuestionStatus.CLOSED, QuestionStatus.ANSWERED)


def patient_clock(question: Question, now: datetime) -> PatientClock:
    if question.status in FIXED_CLOCK_STATUSES:
        # The status badge already says "Answered" or "Closed": the clock says when.
        when = times.format_time(question.first_answered_at, "j M, H:i") if question.first_answered_at else "—"
        return PatientClock(str(question.status), when)
    if question.status == QuestionStatus.INFO_REQUESTED or question.clock_paused_at is not None:
        return PatientClock("paused", "waiting for your reply")
    due_at = question.clock_due_at or question.due_at
    if question.breached_at is not None and question.clock_due_at is not None:
        # The sweep has recorded the breach: no more counting, the page says what happened.
        return PatientClock("late", f"late since {times.format_time(question.clock_due_at, 'j M, H:i')}")
    return PatientClock("running", countdown_text(due_at - now), due_at)


# --- Asking ----------------------------------------------------------------------------


def _own_question(request, pk) -> Question:
    """The signed-in patient's own question; anyone else's is a 404, so ids reveal nothing."""
    return access.own_question(request.user, pk)


def _ask_initial(request, draft=None) -> dict:
    initial = {"age": request.user.age, "sex": request.user.sex} if request.user.is_authenticated else {}
    slug = request.GET.get("specialty")
    if slug:
        specialty = Specialty.objects.filter(slug=slug).first()
        if specialty is not None:
            initial["specialty"] = specialty.pk
    if draft is not None:
        initial.update(title=draft.title, description=draft.description)
        if draft.specialty_id:
            initial["specialty"] = draft.specialty_id
    return initial


def _duty_notes(form: AskForm, time_zone: str) -> str:
    """The ask form's honest notes, as HTML: one per specialty nobody will be on duty for
    before the due time, shown for the chosen specialty (static/portal/duty_notes.js follows
    the choice as the patient changes it). The kept roster also lists the choices."""
    roster = cover_cache.roster(timezone.now())
    form.fields["specialty"].listed = roster.specialties
    chosen = str(form["specialty"].value() or "")
    # Every note has the same due time, and often the same next doctor: each written once.
    shown = functools.cache(lambda moment: format_time(moment, LONG_DATE_TIME, time_zone) if moment else "")
    notes = []
    for cover in roster.covers:
        notes.append(
            {
                "specialty": cover.specialty,
                "due": shown(cover.due_at),
                "next_on_duty": shown(cover.next_on_duty),
                "fallback": cover.fallback,
                "shown": chosen == str(cover.specialty.pk),
            }
        )
    return duty_notes_html(notes)


# The notes' HTML by what it shows (see duty_notes_html); emptied when it reaches the bound.
_NOTES_KEPT = 512
_notes_html: dict[tuple, str] = {}


def duty_notes_html(notes: list[dict]) -> str:
    """consultations/_duty_notes.html for these notes, rendered once per process for each
    set of notes that reads the same. At night every specialty has a note (eight in the
    bench, a tenth of the form page's CPU), and within a minute every patient of a time
    zone is shown the same ones: the specialties, the due time to the minute, the next
    doctor's time, the fallback and which note is open. No patient data is in them."""
    key = tuple(
        (
            note["specialty"].pk,
            note["specialty"].name,
            note["due"],
            note["next_on_duty"],
            note["fallback"] and (note["fallback"].pk, note["fallback"].name),
            note["shown"],
        )
        for note in notes
    )
    try:
        return _notes_html[key]
    except KeyError:
        html = render_to_string("consultations/_duty_notes.html", {"duty_notes": notes})
        if len(_notes_html) >= _NOTES_KEPT:
            _notes_html.clear()
        _notes_html[key] = html
        return html


def _not_indexed(response):
    # A page that may hold a patient's words: never indexed, whatever robots.txt says.
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _ask_first(request):
    """Question first (issue 15): an anonymous visitor types the question, which is kept
    server side (consultations/drafts.py) while they sign up or log in."""
    draft = drafts.in_session(request)
    if request.method == "POST":
        form = QuestionDraftForm(request.POST)
        if form.is_valid():
            drafts.save_for_visitor(request, **form.cleaned_data)
            ask_url = reverse("consultations:ask")
            return redirect(f"{reverse('signup')}?{urlencode({'next': ask_url})}")
    else:
        form = QuestionDraftForm(initial=_ask_initial(request, draft))
    red_flags = []
    if form.is_bound:
        red_flags = find_red_flags(*(form.data.get(name, "") for name in ("title", "description")))
    return render(
        request,
        "consultations/ask_first.html",
        {
            "form": form,
            "red_flags": red_flags,
            "duty_notes": _duty_notes(form, settings.TIME_ZONE),
            "red_flag_phrases_json": json.dumps(RED_FLAG_PHRASES),
            "draft_kept": draft is not None and not form.is_bound,
            "draft_hours": settings.QUESTION_DRAFT_HOURS,
        },
    )


@rate_limited("ask")
@cache_control(private=True, no_cache=True)
@never_cache
def ask(request):
    if not request.user.is_authenticated:
        return _not_indexed(_ask_first(request))
    return _not_indexed(_ask_signed_in(request))


def _ask_signed_in(request):
    if request.method == "POST":
        form = AskForm(request.POST, request.FILES)
        form.fields["specialty"].listed = cover_cache.specialties(timezone.now())
        if form.is_valid():
            submission = services.submit_question_once(
                patient=request.user,
                submission_token=form.cleaned_data["submission_token"],
                files=form.cleaned_data["attachments"],
                **form.question_fields(),
            )
            drafts.discard(request)
            if not submission.is_new:
                messages.info(request, "We had already received this question, so it was sent only once. Here it is.")
            # A path, not a name: redirect() would first try it as a URL name (a failed reverse()).
            return HttpResponseRedirect(links.url_for_id("consultations:question_submitted", submission.question.pk))
        # Only a redisplay looks the draft up (and claims this session's): a question
        # sent needs no lookup, drafts.discard removes both kinds at once.
        draft = drafts.for_patient(request)
    else:
        draft = drafts.for_patient(request)
        form = AskForm(initial=_ask_initial(request, draft))
    red_flags = []
    duty_notes = _duty_notes(form, request.user.time_zone)
    if form.is_bound:
        red_flags = find_red_flags(*(form.data.get(name, "") for name in ("title", "description", "medical_history")))
    elif draft is not None:
        red_flags = find_red_flags(draft.title, draft.description)
    return render(
        request,
        "consultations/ask.html",
        {
            "form": form,
            "red_flags": red_flags,
            "duty_notes": duty_notes,
            "red_flag_phrases_json": json.dumps(RED_FLAG_PHRASES),
            # As text: the page's script reads them, and a number would go through
            # Django's localized number formatting on every showing.
            "max_files": str(settings.QUESTION_MAX_ATTACHMENTS),
            "max_bytes": str(settings.QUESTION_ATTACHMENT_MAX_BYTES),
            "draft_kept": draft is not None and not form.is_bound,
        },
    )


@login_required
def question_submitted(request, pk):
    question = _own_question(request, pk)
    return render(
        request,
        "consultations/submitted.html",
        {
            "question": question,
            "window_hours": (question.due_at - question.submitted_at).total_seconds() / 3600,
            "clock": patient_clock(question, timezone.now()),
        },
    )


# --- My questions and the question page ---------------------------------------------


@login_required
def my_questions(request):
    page, breach_credits = patient_list.page_and_credits(
        patient_list.own_newest_first(request.user), request.user, patient_list.PER_PAGE, request.GET.get("page")
    )
    now = timezone.now()
    rows = [(question, patient_clock(question, now)) for question in page]
    return render(request, "consultations/my_questions.html", {"page": page, "rows": rows, "credits": breach_credits})


def _render_question(request, question, *, follow_up_form=None, rating_form=None, close_error="", status=200):
    replies = list(question.replies.select_related("doctor").prefetch_related("doctor__specialties", "attachments"))
    for reply in replies:
        reply.shown_attachments = pictures.shown_attachments(reply.attachments.all())
    if rating_form is None and question.rating:
        rating_form = RatingForm(initial={"rating": question.rating, "comment": question.rating_comment})
    now = timezone.now()
    breach_credits = credits.for_question(question)
    context = {
        "question": question,
        "replies": replies,
        "attachments": pictures.shown_attachments(question.attachments.filter(reply__isnull=True)),
        "clock": patient_clock(question, now),
        "overdue": credits.overdue(question, now, breach_credits),
        "overdue_later": credits.upcoming(question, now),
        "breach_credits": breach_credits,
        "can_follow_up": question.status != QuestionStatus.CLOSED,
        "can_rate": question.first_answered_at is not None,
        "follow_up_form": follow_up_form or FollowUpForm(),
        "rating_form": rating_form or RatingForm(),
        "close_error": close_error,
    }
    return render(request, "consultations/question_detail.html", context, status=status)


# What a patient may do on their question page, per patient, in each window
# (settings.RATE_LIMITS): more than a person writes, far less than a script.
PATIENT_ACTION_WAIT = (
    "You have done this {limit} times in {minutes} minutes, so we paused it for a while to keep the "
    "service safe. {kept}Please try again later. If you need medical help urgently, call your local "
    "emergency number now."
)


def _over_limit(request, scope: str, kept: str = "") -> str:
    """Count one attempt; the message to show when the patient is over the limit, else ""."""
    if not settings.RATELIMIT_ENABLED:
        return ""
    limit, period = settings.RATE_LIMITS[scope]
    if ratelimit.hit(scope, ratelimit.client_ident(request), limit, period):
        return ""
    return PATIENT_ACTION_WAIT.format(limit=limit, minutes=max(1, period // 60), kept=kept)


@login_required
@never_cache
def question_detail(request, pk):
    return _render_question(request, _own_question(request, pk))


@login_required
@require_POST
def follow_up(request, pk):
    """A follow-up, or the reply to a doctor's request for information."""
    question = _own_question(request, pk)
    form = FollowUpForm(request.POST, request.FILES)
    kept = "Your message is still in the box below, not sent yet. "
    if form.files_were_sent:
        kept += "Please attach your files again when you retry. "
    # Files cost real work to check (decoding, PDF parsing), so a post with files is
    # counted before they are checked; a text-only post only once it is valid.
    wait = _over_limit(request, "follow_up", kept=kept) if form.files_were_sent else ""
    if not wait and not form.is_valid():
        return _render_question(request, question, follow_up_form=form)
    if not wait and not form.files_were_sent:
        wait = _over_limit(request, "follow_up", kept=kept)
    if wait:
        # Shown again without the files, so they are not checked after all.
        form = FollowUpForm(request.POST)
        form.add_error("body", wait)
        return _render_question(request, question, follow_up_form=form, status=429)
    was_waiting_for_patient = question.status == QuestionStatus.INFO_REQUESTED
    try:
        services.post_follow_up(
            question, request.user, form.cleaned_data["body"], files=form.cleaned_data["attachments"]
        )
    except ValueError:
        messages.error(request, "This question is closed. Please ask a new question instead.")
        return redirect(question)
    if was_waiting_for_patient:
        messages.success(request, "Thank you. The doctor has your reply and the answer clock runs again.")
    else:
        messages.success(request, "Your message was sent to the doctor.")
    return redirect(question)


@login_required
@require_POST
def rate(request, pk):
    """Rate the answer. A rating may be changed: the latest one counts, and the page
    says which rating is on record and since when."""
    question = _own_question(request, pk)
    if question.first_answered_at is None:
        messages.error(request, "You can rate the answer once a doctor has answered.")
        return redirect(question)
    form = RatingForm(request.POST)
    if not form.is_valid():
        return _render_question(request, question, rating_form=form)
    wait = _over_limit(request, "rating", kept="Your rating and comment are still below, not saved yet. ")
    if wait:
        form.add_error("rating", wait)
        return _render_question(request, question, rating_form=form, status=429)
    previous = question.rating
    services.rate_answer(question, form.cleaned_data["rating"], form.cleaned_data["comment"])
    new = form.cleaned_data["rating"]
    if previous is None:
        messages.success(request, "Thank you for rating the answer.")
    elif previous != new:
        messages.success(request, f"Your rating was changed from {previous} to {new} out of 5.")
    else:
        messages.success(request, f"Your rating of {new} out of 5 was saved again.")
    return redirect(question)


@login_required
@require_POST
def close(request, pk):
    question = _own_question(request, pk)
    wait = _over_limit(request, "close")
    if wait:
        return _render_question(request, question, close_error=wait, status=429)
    if services.close_question(question):
        messages.success(request, "Your question is closed. Thank you for using Ask a Doctor.")
    else:
        messages.info(request, "This question was already closed.")
    return redirect(question)


# --- Attachments -----------------------------------------------------------------------


# The name endings each stored type may keep; any other ending is replaced.
TYPE_EXTENSIONS = {"jpg": (".jpg", ".jpeg"), "png": (".png",), "pdf": (".pdf",)}


def download_name(original_name: str, extension: str) -> str:
    """The patient's own file name, ending as its content really is.

    A PDF uploaded as "scan.jpg" was accepted as a PDF (the content decides), so it
    is offered back as "scan.pdf": the computer then opens it with the right program.
    """
    stem, dot, suffix = original_name.rpartition(".")
    if dot and f".{suffix.lower()}" in TYPE_EXTENSIONS.get(extension, ()):
        return original_name
    return f"{stem if dot and stem else original_name}.{extension}"


def _file_response(content, *, inline: bool, filename: str, content_type: str) -> FileResponse:
    """A patient's file with the headers every variant shares: the browser may not guess
    another type, nothing in it may run (sandboxed, no sources), and caching is private
    and never stored (the views are `never_cache`)."""
    response = FileResponse(content, as_attachment=not inline, filename=filename, content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def _checked_attachment(request, pk, action: str):
    """The attachment if the user may see its question (else 404), whether they own it,
    and the access logged as `action` for anyone but its patient."""
    attachment = access.attachment_for(request.user, pk)
    is_owner = attachment.question.patient_id == request.user.pk
    if not is_owner:
        services.log_access(request.user, attachment.question, action, request=request, attachment=attachment)
    return attachment, is_owner


def _open_stored(attachment):
    try:
        return attachment.file.open("rb")
    except FileNotFoundError:
        logger.error("Attachment %s is missing from private storage", attachment.pk)
        raise Http404("This file is no longer available.") from None


def _served_name(attachment, is_owner: bool) -> str:
    return download_name(attachment.original_name, attachment.extension) if is_owner else attachment.neutral_name


@login_required
@never_cache
def attachment_download(request, pk):
    """Serve one attachment to whoever may see its question. Doctors and staff get a
    neutral file name (never the patient's own) and their download is logged."""
    attachment, is_owner = _checked_attachment(request, pk, "download")
    return _file_response(
        _open_stored(attachment),
        inline=False,
        filename=_served_name(attachment, is_owner),
        content_type=attachment.content_type,
    )


@login_required
@never_cache
def attachment_picture(request, pk):
    """A picture at full size, shown in the browser (Content-Disposition: inline).

    Only JPEG and PNG, which we re-encoded when they were uploaded, and only when the
    stored bytes still start as their recorded type; anything else (PDFs, a file that
    is not what its record says) is served as a download, never inline."""
    attachment, is_owner = _checked_attachment(request, pk, "view picture")
    handle = _open_stored(attachment)
    inline = pictures.is_picture(attachment) and pictures.stored_as_recorded(attachment, handle)
    content_type = attachment.content_type if inline else "application/octet-stream"
    if pictures.is_picture(attachment) and not inline:
        logger.error("Attachment %s is not the picture its record says; served as a download", attachment.pk)
    return _file_response(handle, inline=inline, filename=_served_name(attachment, is_owner), content_type=content_type)


@login_required
@never_cache
def attachment_thumbnail(request, pk):
    """A small copy of a picture (at most 320 px a side), made and kept on first use;
    404 for documents and for files that cannot be read as pictures."""
    attachment, is_owner = _checked_attachment(request, pk, "view thumbnail")
    try:
        data = pictures.thumbnail(attachment)
    except pictures.NoThumbnail:
        raise Http404("No preview for this file.") from None
    stem = _served_name(attachment, is_owner).rpartition(".")[0]
    return _file_response(
        io.BytesIO(data),
        inline=True,
        filename=f"{stem}-preview.{attachment.extension}",
        content_type=attachment.content_type,
    )
