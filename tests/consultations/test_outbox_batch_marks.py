"""A batch of e-mails costs one statement per e-mail (issue 17): the claim of each row
also marks the one handed over just before it sent, so nothing is claimed before the
previous e-mail's mark is committed, and every row still ends sent once."""

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from consultations import notifications
from consultations.models import Notification, NotificationStatus
from tests.consultations.test_outbox import flaky_mail, outgoing, question  # noqa: F401 - fixtures

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="the mark rides on the next claim in one PostgreSQL statement (elsewhere: two, tested in test_outbox)",
    ),
]


def test_a_batch_of_n_emails_is_n_claims_each_marking_the_previous_one_plus_the_last_mark(question):  # noqa: F811
    ids = notifications.queue_notifications(outgoing(question, 5))

    with CaptureQueriesContext(connection) as queries:
        assert notifications.deliver_many(ids) == 5

    updates = [query["sql"] for query in queries if query["sql"].lstrip().upper().startswith(("UPDATE", "WITH"))]
    assert len(updates) == 6
    assert all(sql.startswith("WITH") for sql in updates[1:5])
    assert set(Notification.objects.filter(pk__in=ids).values_list("status", "attempts", "locked_until")) == {
        (NotificationStatus.SENT, 1, None)
    }
    assert sorted(m.to[0] for m in mail.outbox) == [f"reader{n}@example.com" for n in range(5)]


def test_the_previous_mark_is_written_when_the_next_row_is_not_claimable_or_its_send_fails(
    question,  # noqa: F811
    flaky_mail,  # noqa: F811
):
    first, held, third, fourth = notifications.queue_notifications(outgoing(question, 4))
    # Another sender holds the second row; the fourth's send fails.
    Notification.objects.filter(pk=held).update(locked_until=notifications.timezone.now() + notifications.send_lock())
    real_send = flaky_mail.send_messages

    def fail_the_fourth(self, messages):
        if messages[0].to == ["reader3@example.com"]:
            raise OSError("mail server hiccup")
        return real_send(self, messages)

    flaky_mail.send_messages = fail_the_fourth
    try:
        assert notifications.deliver_many([first, held, third, fourth]) == 2
    finally:
        flaky_mail.send_messages = real_send

    rows = dict(Notification.objects.values_list("pk", "status"))
    assert (rows[first], rows[third]) == (NotificationStatus.SENT, NotificationStatus.SENT)
    assert (rows[held], rows[fourth]) == (NotificationStatus.PENDING, NotificationStatus.PENDING)
    failed = Notification.objects.get(pk=fourth)
    assert (failed.attempts, failed.locked_until, "hiccup" in failed.last_error) == (1, None, True)
