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

import functools
from typing import NamedTuple

from django.core.paginator import Page, Paginator
from django.db import connection
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


class FirstPage(NamedTuple):
    """What the first page of a patient's list shows, in brief (the early page's check,
    consultations/early_list.py)."""

    count: int  # questions on it; PER_PAGE + 1 when there is a second page
    has_credit: bool  # whether the patient has any breach credit
    digest: str  # equal for two reads exactly when the listed values are
    moving: tuple[tuple, ...]  # the LISTED_FIELDS of the questions not in the fixed statuses


def first_page(patient, fixed_statuses: tuple[str, ...]) -> FirstPage:
    """The first page of `patient`'s list in brief, in one query (PostgreSQL)."""
    sql, params = first_page_statement(fixed_statuses)
    with connection.cursor() as cursor:
        cursor.execute(sql, for_patient(params, patient.pk))
        return first_page_from(cursor.fetchall())


def first_page_from(rows: list[tuple]) -> FirstPage:
    """The brief from the rows of first_page_statement (each: count, credit, digest, then a
    moving question's LISTED_FIELDS and credit flag, or NULLs when none moves)."""
    count, has_credit, digest = rows[0][:3]
    return FirstPage(count, has_credit, digest, tuple(row[3:-1] for row in rows if row[3] is not None))


def _first_page_query(patient) -> QuerySet:
    return listed(own_newest_first(patient), patient).values_list(*LISTED_FIELDS, "patient_has_credit")[: PER_PAGE + 1]


# A user id no row has: it marks where the patient's id goes in the compiled statement.
_MARKER_ID = -736_401_911
PATIENT = object()


def for_patient(params: tuple, patient_id: int) -> tuple:
    """The statement's parameters with `patient_id` where PATIENT stands."""
    return tuple(patient_id if param is PATIENT else param for param in params)


@functools.cache
def first_page_statement(fixed_statuses: tuple[str, ...]) -> tuple[str, tuple]:
    """A PostgreSQL statement digesting the first page of a patient's list, built once per
    process around the ORM's own: the database returns the count, whether there is a
    credit, an md5 of the rows' text in a fixed order, and whole only the questions whose
    status is not in `fixed_statuses`. Its parameters hold PATIENT where the patient's id
    goes (for_patient); the others are constants of the query."""
    from portal.models import User

    page_sql, params = _first_page_query(User(pk=_MARKER_ID)).query.sql_with_params()
    marked = tuple(PATIENT if param == _MARKER_ID else param for param in params)
    if PATIENT not in marked:
        raise ValueError("the list's statement does not take the patient's id as a parameter")
    fixed = ", ".join(["%s"] * len(fixed_statuses))
    sql = (
        f"WITH page AS ({page_sql}), "  # noqa: S608 - the ORM's statement, with its placeholders
        "summary AS (SELECT count(*) AS n, coalesce(bool_or(page.patient_has_credit), false) AS credit, "
        "md5(string_agg(page::text, E'\\n' ORDER BY page.id)) AS digest FROM page) "
        "SELECT summary.n, summary.credit, summary.digest, page.* FROM summary "
        f"LEFT JOIN page ON page.status NOT IN ({fixed})"
    )
    return sql, (*marked, *fixed_statuses)
