"""Issue 16: do the outbox's two shortcuts around the ORM pay for themselves?

1. Claiming a row for a send: `update_returning` (UPDATE ... RETURNING built from the
   ORM's private UpdateQuery/compiler, one round trip) against the public
   `update()` then `get()` (two round trips), per claim and per whole `deliver()`
   (locmem mail backend, so the mail server's own time is left out: a real SMTP
   hand-over only makes the difference a smaller share).
2. Writing a sweep's e-mails: `_insert` (since session 15 a COPY, before one JSON
   document unpacked by jsonb_to_recordset; both built from `_meta`) against `bulk_create`.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_x BENCH_REDIS_URL=redis://127.0.0.1:6379/N \\
        .venv/bin/python -m bench.outbox_internals

Outcome: (1) alone saved no time on a whole send beyond noise, so issue 16 took it out;
issue 17 brought it back for the batch claim (portal.database.claim_returning: a batch
of e-mails claimed, and the previous batch marked sent, per statement), whose cost per
e-mail bench.outbox_cost measures and whose drain rate BENCH_ONLY=catchup measures
(docs/benchmarks.md, "Outage catch-up"). (2) stays: bulk_create was 2x slower.

Recreates the bench database. Variants alternate within one run (medians of paired
rounds), so a loaded machine slows both alike.
"""

import statistics
import time
from unittest import mock

from bench import environment

ROUNDS = 7
CLAIMS = 500
SIZES = (200, 4000)  # a delivery chunk; a sweep of 1,000 breaches (4 e-mails each)


def emails(count: int, tag: str):
    from consultations.notifications import OutgoingEmail

    body = "Question #123456 has passed its answer guarantee. Open it: http://127.0.0.1:8000/doctor/x/\n" * 6
    return [
        OutgoingEmail(
            to_email=f"staff{n}@example.com",
            kind="sla_breach",
            subject=f"Question #{n} is overdue",
            body=body,
            dedupe_key=f"{tag}:{n}",
        )
        for n in range(count)
    ]


def time_insert(count: int, tag: str, use_bulk_create: bool) -> float:
    from django.db import transaction

    from consultations import notifications
    from consultations.models import Notification

    rows = emails(count, tag)
    with transaction.atomic():
        started = time.perf_counter()
        if use_bulk_create:
            Notification.objects.bulk_create([Notification(**vars(email)) for email in rows])
        else:
            notifications._insert(rows)
        elapsed = time.perf_counter() - started
        transaction.set_rollback(True)
    return elapsed


def pending_rows(count: int) -> list[int]:
    from consultations import notifications

    return notifications._insert(emails(count, f"claim-{time.monotonic_ns()}"))


def claim_returning(notification_id: int, now):
    """The claim as it was before issue 16: one UPDATE ... RETURNING through
    `update_returning` (the ORM's private UpdateQuery and compiler)."""
    from django.db.models import F, Q

    from consultations import notifications
    from consultations.models import Notification, NotificationStatus
    from portal.database import update_returning

    free = Notification.objects.filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=now), pk=notification_id, status=NotificationStatus.PENDING
    )
    values = {"locked_until": now + notifications.send_lock(), "attempts": F("attempts") + 1}
    fields = ("id", "to_email", "subject", "body", "attempts", "dedupe_key")
    claimed = update_returning(free, values, fields)
    return Notification(**dict(zip(fields, claimed[0], strict=True))) if claimed else None


def time_claims(ids: list[int], public: bool, whole_deliver: bool) -> float:
    from django.utils import timezone

    from consultations import outbox_send

    now = timezone.now()
    patch = mock.MagicMock() if public else mock.patch.object(outbox_send, "_claim", claim_returning)
    with patch:
        started = time.perf_counter()
        for pk in ids:
            if whole_deliver:
                outbox_send.deliver(pk, now)
            else:
                outbox_send._claim(pk, now)
        return (time.perf_counter() - started) / len(ids)


def paired(measure_a, measure_b) -> tuple[float, float]:
    a, b = [], []
    for round_number in range(ROUNDS):
        first, second = (measure_a, measure_b) if round_number % 2 == 0 else (measure_b, measure_a)
        results = {id(first): first(), id(second): second()}
        a.append(results[id(measure_a)])
        b.append(results[id(measure_b)])
    return statistics.median(a), statistics.median(b)


def main() -> None:
    environment.configure()
    from bench import database

    database.prepare()
    import django

    django.setup()
    from django.test.utils import override_settings

    print("| measurement | private internals | public API | public / private |")
    print("| --- | --- | --- | --- |")
    for size in SIZES:
        private, public = paired(
            lambda size=size: time_insert(size, f"i{time.monotonic_ns()}", False),
            lambda size=size: time_insert(size, f"b{time.monotonic_ns()}", True),
        )
        print(
            f"| insert {size} e-mails | {private * 1000:.1f} ms | {public * 1000:.1f} ms | x {public / private:.2f} |"
        )
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
        for label, whole in (("claim one row", False), ("deliver one e-mail (locmem)", True)):
            private, public = paired(
                lambda whole=whole: time_claims(pending_rows(CLAIMS), False, whole),
                lambda whole=whole: time_claims(pending_rows(CLAIMS), True, whole),
            )
            print(f"| {label} | {private * 1e6:.0f} us | {public * 1e6:.0f} us | x {public / private:.2f} |")


if __name__ == "__main__":
    main()
