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

from consultations import credits
from consultations.models import BreachCredit

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
