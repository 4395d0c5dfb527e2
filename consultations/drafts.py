"""Question first (issue 15): a visitor types the question before signing up or
logging in, and finds it on the ask form once signed in.

The draft lives in the database (QuestionDraft), reached by a random token kept
in the visitor's session; the session's own data survives login (Django keeps
it when it rotates the key), so logging in or finishing a sign-up in the same
browser finds it. A sign-up made with a draft in the session also links the
draft to the pending account: finishing the sign-up through the e-mailed link,
which asks for the sign-up password, hands it to that account even in another
browser or app. Nothing here submits a question: the patient confirms the ask
form. No clinical text goes into a URL or an e-mail; drafts expire after
settings.QUESTION_DRAFT_HOURS and are deleted by the next draft saved or by
`purge_expired` (run with the sweep).
"""

import functools
import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from consultations.models import QuestionDraft
from portal.database import read_as_health_check, run_prepared

SESSION_KEY = "question_draft"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def max_age() -> timedelta:
    return timedelta(hours=settings.QUESTION_DRAFT_HOURS)


def live(now: datetime | None = None) -> QuerySet[QuestionDraft]:
    """Drafts saved within the last QUESTION_DRAFT_HOURS."""
    return QuestionDraft.objects.filter(saved_at__gt=(now or timezone.now()) - max_age())


def purge_expired(now: datetime | None = None) -> int:
    """Delete drafts past their age; returns how many."""
    deleted, _ = QuestionDraft.objects.filter(saved_at__lte=(now or timezone.now()) - max_age()).delete()
    return deleted


def in_session(request) -> QuestionDraft | None:
    """The live, not yet claimed draft whose token this session holds."""
    token = request.session.get(SESSION_KEY)
    if not isinstance(token, str) or not token:
        return None
    return live().filter(token_hash=_hash(token), owner__isnull=True).select_related("specialty").first()


def save_for_visitor(request, *, specialty, title: str, description: str) -> QuestionDraft:
    """Keep what the visitor typed; a second save from the same session replaces the first."""
    purge_expired()
    draft = in_session(request)
    if draft is None:
        token = secrets.token_urlsafe(32)
        draft = QuestionDraft(token_hash=_hash(token))
        request.session[SESSION_KEY] = token
    draft.specialty, draft.title, draft.description = specialty, title, description
    draft.saved_at = timezone.now()
    draft.save()
    return draft


def link_to_signup(request, user) -> None:
    """After a sign-up in this session: the draft goes with the pending account, so
    whoever finishes that sign-up (the link asks for its password) finds it. Only
    the newest sign-up's draft goes along, as only its link works."""
    from portal.signup import is_pending

    draft = in_session(request)
    if draft is None or not is_pending(user):
        return
    QuestionDraft.objects.filter(pending_user=user).exclude(pk=draft.pk).update(pending_user=None)
    draft.pending_user = user
    draft.save(update_fields=["pending_user"])


def claim_signup(user) -> None:
    """The sign-up was finished: its draft now belongs to the account."""
    live().filter(pending_user=user, owner__isnull=True).update(owner=user, pending_user=None)


def for_patient(request) -> QuestionDraft | None:
    """The signed-in patient's draft: this session's unclaimed one becomes theirs;
    else their newest live one (kept through a sign-up finished elsewhere)."""
    draft = in_session(request)
    if draft is not None:
        draft.owner, draft.pending_user = request.user, None
        draft.save(update_fields=["owner", "pending_user"])
        return draft
    now = timezone.now()
    if not _may_have_own(request.user, now):
        return None
    return live(now).filter(owner=request.user).select_related("specialty").order_by("-saved_at").first()


@functools.cache
def _own_statements() -> tuple[str, str]:
    """Two statements on a patient's own drafts, as the ORM would write them: is there a
    live one, and delete them all."""
    table = connection.ops.quote_name(QuestionDraft._meta.db_table)
    owner = connection.ops.quote_name(QuestionDraft._meta.get_field("owner").column)
    saved_at = connection.ops.quote_name(QuestionDraft._meta.get_field("saved_at").column)
    return (
        f"SELECT 1 FROM {table} WHERE {owner} = %s AND {saved_at} > %s LIMIT 1",  # noqa: S608 - names from the model
        f"DELETE FROM {table} WHERE {owner} = %s",  # noqa: S608
    )


def _may_have_own(user, now: datetime) -> bool:
    """False only when the patient surely has no live draft of their own: the ask form's
    usual case, answered by one prepared statement instead of the ORM's query (issue 17:
    the lookup was an eighth of the form page's CPU). True where that cannot be told
    cheaply (not PostgreSQL, the statement was lost, the connection had dropped): the
    caller looks as before. As the form page's first query it is also the connection's
    health check (portal.database.read_as_health_check): no separate `SELECT 1`."""
    rows = read_as_health_check(lambda: run_prepared(_own_statements()[0], (user.pk, now - max_age())))
    return rows is None or bool(rows)


def discard(request) -> None:
    """The question was sent (or the patient dropped it): forget every draft of theirs,
    and this session's draft if nobody claimed it yet, in one statement.

    Called on every question sent, so it costs one round trip: no lookup first, and
    no transaction around the DELETE (nothing points at a draft, nothing listens to
    its deletion, so Django's collector would only add BEGIN and COMMIT)."""
    token = request.session.pop(SESSION_KEY, None)
    has_token = isinstance(token, str) and bool(token)
    # The usual case, no draft in this session: one prepared DELETE of the patient's own.
    if not has_token and run_prepared(_own_statements()[1], (request.user.pk,)) is not None:
        return
    mine = Q(owner=request.user)
    if has_token:
        mine |= Q(token_hash=_hash(token), owner__isnull=True)
    drafts = QuestionDraft.objects.filter(mine)
    drafts._raw_delete(drafts.db)
