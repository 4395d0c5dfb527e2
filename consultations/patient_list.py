"""The rows of a patient's "my questions" page in as few database round trips as the
page allows (issue 17: a signed-in page spends most of its time waiting on them).

The usual patient has fewer questions than fit on one page and no breach credits,
so the first page is read with one extra row and without a COUNT: if the extra row
is missing the total is known. The same query says, once for the whole statement,
whether the patient has any credit, so the credits' own query runs only when there
is one to show. Only the columns the list shows are read (not the question texts).

The caller passes the questions the page may show (consultations.access); nothing
here widens them.
"""

from django.core.paginator import Page, Paginator
from django.db.models import Exists, QuerySet

from consultations import access, credits
from consultations.models import BreachCredit

# Rows per page of "my questions".
PER_PAGE = 20

# What the list and its clock (views.patient_clock) read of a question.
LISTED_FIELDS = (
    "id",
    "patient_id",
    "title",
    "is_urgent",
    "status",
    "submitted_at",
    "first_answered_at",
    "clock_paused_at",
    "clock_due_at",
    "due_at",
    "breached_at",
    "specialty__name",
)


def own_newest_first(patient) -> QuerySet:
    """The questions "my questions" lists: the patient's own (consultations.access), newest first."""
    return access.own_questions(patient).order_by("-submitted_at", "-pk")


def listed(questions: QuerySet, patient) -> QuerySet:
    """`questions` with only the listed columns, and whether `patient` has any credit."""
    # Not correlated to the row: PostgreSQL evaluates it once per statement.
    any_credit = Exists(BreachCredit.objects.filter(patient=patient))
    return questions.select_related("specialty").only(*LISTED_FIELDS).annotate(patient_has_credit=any_credit)


def page_and_credits(questions: QuerySet, patient, per_page: int, number) -> tuple[Page, list[BreachCredit]]:
    """The requested page of `questions` and `patient`'s latest breach credits."""
    questions = listed(questions, patient)
    if number in (None, "", "1"):
        rows = list(questions[: per_page + 1])
        if len(rows) <= per_page:
            page = Paginator(rows, per_page).page(1)
            has_credit = rows[0].patient_has_credit if rows else True
            return page, credits.for_patient(patient) if has_credit else []
    return Paginator(questions, per_page).get_page(number), credits.for_patient(patient)


def first_page_values(patient) -> list[tuple]:
    """What the first page of `patient`'s list shows, as plain values: per question the
    LISTED_FIELDS, then whether the patient has any credit; one row more than a page
    when there is a second page. One query, no model instances (the early page's check,
    consultations/early_list.py)."""
    return list(
        listed(own_newest_first(patient), patient).values_list(*LISTED_FIELDS, "patient_has_credit")[: PER_PAGE + 1]
    )
