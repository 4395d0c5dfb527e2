"""Synthetic data at benchmark sizes, loaded fast.

People, specialties and articles go through the ORM's bulk_create (a few
thousand rows). Questions are generated inside PostgreSQL with
`INSERT ... SELECT generate_series(...)`: a million rows load in about 30 s
(bench/growth.py rebuilds the indexes around a step that doubles the table).

Stored questions are history (answered or closed, clock stopped), one every
HISTORY_PACE back from yesterday, as in a portal that has run for years. The questions that matter to the SLA engine
are added separately: exactly `DUE_COUNT` open questions whose clock is past
due, warned earlier and not yet breached.
"""

import random
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from consultations import cover_cache
from consultations.models import DoctorProfile, Question, Specialty
from portal.models import User, new_patient_code

PASSWORD = "bench-password-not-secret"
DUE_COUNT = 1000

SPECIALTIES = [
    "Dermatology",
    "Cardiology",
    "Paediatrics",
    "Orthopaedics",
    "Gynaecology",
    "Neurology",
    "Ear, nose and throat",
    "General practice",
]
DOCTORS_PER_SPECIALTY = 4
STAFF_COUNT = 3


@dataclass
class People:
    specialty_ids: list[int]
    # Doctor profile ids, specialty-major: DOCTORS_PER_SPECIALTY per specialty.
    doctor_ids: list[int]
    patient_ids: list[int]
    patient_emails: list[str]
    queue_doctor: User
    staff: list[User] = field(default_factory=list)


def _unique_codes(count: int) -> list[str]:
    codes: set[str] = set(User.objects.values_list("patient_code", flat=True))
    fresh: list[str] = []
    while len(fresh) < count:
        code = new_patient_code()
        if code not in codes:
            codes.add(code)
            fresh.append(code)
    return fresh


def _users(prefix: str, count: int, password_hash: str, **extra) -> list[User]:
    codes = _unique_codes(count)
    users = [
        User(
            email=f"{prefix}{n}@bench.example.com",
            full_name=f"{prefix.title()} Number{n}",
            patient_code=codes[n],
            password=password_hash,
            time_zone="Europe/Warsaw",
            **extra,
        )
        for n in range(count)
    ]
    return User.objects.bulk_create(users, batch_size=2000)


@transaction.atomic
def create_people(patients: int) -> People:
    # One real hash for everyone: hashing thousands of passwords would cost minutes.
    password_hash = make_password(PASSWORD)
    # A data migration may already have created some specialties: reuse them.
    specialties = [
        Specialty.objects.get_or_create(slug=slugify(name), defaults={"name": name, "sort_order": n})[0]
        for n, name in enumerate(SPECIALTIES)
    ]
    doctor_users = _users("doctor", len(specialties) * DOCTORS_PER_SPECIALTY + 1, password_hash)
    profiles = DoctorProfile.objects.bulk_create(
        [
            DoctorProfile(
                user=user,
                display_name=f"Dr. Bench Doctor{n}",
                slug=f"dr-bench-doctor{n}",
                qualifications="MD",
                registration_number=f"BENCH-{n:06d}",
                bio="Works on the benchmark's synthetic questions.",
                is_verified=True,
                # The first doctor of each specialty is its senior (breach escalations);
                # the last one, the queue doctor of every specialty, is not.
                is_senior=n % DOCTORS_PER_SPECIALTY == 0 and n < len(doctor_users) - 1,
            )
            for n, user in enumerate(doctor_users)
        ]
    )
    through = DoctorProfile.specialties.through
    links = [
        through(doctorprofile_id=profile.pk, specialty_id=specialties[n // DOCTORS_PER_SPECIALTY].pk)
        for n, profile in enumerate(profiles[:-1])
    ]
    # The queue doctor works in every specialty: the queue page shows all open questions.
    links += [through(doctorprofile_id=profiles[-1].pk, specialty_id=s.pk) for s in specialties]
    through.objects.bulk_create(links)
    cover_cache.forget()  # bulk_create sends no signal: the ask form's duty notes are read again

    staff = _users("staff", STAFF_COUNT, password_hash, is_staff=True)
    group, _ = Group.objects.get_or_create(name=settings.SLA_STAFF_GROUP)
    group.permissions.set(
        Permission.objects.filter(
            content_type__app_label="consultations",
            codename__in=["view_sla_dashboard", "view_question", "change_question", "reassign_question"],
        )
    )
    group.user_set.set(staff)

    patient_users = _users("patient", patients, password_hash, age=40, sex="female")
    return People(
        specialty_ids=[s.pk for s in specialties],
        doctor_ids=[p.pk for p in profiles[:-1]],
        patient_ids=[u.pk for u in patient_users],
        patient_emails=[u.email for u in patient_users],
        queue_doctor=doctor_users[-1],
        staff=staff,
    )


# --- Articles ---------------------------------------------------------------------------

ARTICLE_TOPICS = [
    ("Eczema", "dry, itchy skin that comes and goes"),
    ("High blood pressure", "a reading that stays above 140/90"),
    ("Fever in children", "a temperature above 38 °C"),
    ("Runner's knee", "pain around the kneecap after exercise"),
    ("Migraine", "a throbbing headache, often on one side"),
    ("Sinusitis", "a blocked nose and pressure behind the cheeks"),
    ("Back pain", "pain in the lower back after lifting"),
    ("Acne", "spots on the face, chest or back"),
]


def article_markdown(topic: str, what: str, n: int) -> str:
    """About 700 words of Markdown with question headings, lists and a table of contents' worth of sections."""
    paragraph = (
        f"{topic} is common, and most people manage it well with a few habits. "
        f"It usually means {what}. A doctor looks at how long it has lasted, what makes it "
        "better or worse, and whether anything else changed at the same time. "
    )
    sections = []
    for heading in (
        f"What is {topic.lower()}?",
        "What are the usual signs?",
        "What can I do at home?",
        "When should I see a doctor?",
        "How is it treated?",
    ):
        sections.append(
            f"## {heading}\n\n{paragraph * 3}\n\n"
            "- Keep a short diary of when it happens.\n"
            "- Note any medicine you take, with the dose.\n"
            "- Bring the diary to your appointment.\n"
        )
    return f"Article {n} in the benchmark set.\n\n" + "\n".join(sections)


def create_articles(people: People, count: int, start: int = 0) -> int:
    """Published, reviewed articles with tags, sources and a month of view counts. Returns how many."""
    from articles.models import Article, ArticleStatus, ArticleViewDay, Source, Tag

    now = timezone.now()
    tags = list(Tag.objects.all()) or Tag.objects.bulk_create(
        [Tag(name=name, slug=slugify(name)) for name in ("Skin", "Heart", "Children", "Sport", "Pain", "Allergy")]
    )
    specialties = {s.pk: s for s in Specialty.objects.all()}
    articles = []
    for n in range(start, start + count):
        topic, what = ARTICLE_TOPICS[n % len(ARTICLE_TOPICS)]
        specialty_index = n % len(people.specialty_ids)
        author = people.doctor_ids[specialty_index * DOCTORS_PER_SPECIALTY + 1]
        reviewer = people.doctor_ids[specialty_index * DOCTORS_PER_SPECIALTY]
        published = now - timedelta(days=1 + n % 300)
        article = Article(
            title=f"{topic}: what helps and when to ask a doctor ({n})",
            slug=f"{slugify(topic)}-{n}",
            summary=f"What {topic.lower()} is, what you can do at home, and when to see a doctor.",
            body_markdown=article_markdown(topic, what, n),
            specialty=specialties[people.specialty_ids[specialty_index]],
            author_id=author,
            reviewer_id=reviewer,
            status=ArticleStatus.PUBLISHED,
            submitted_at=published - timedelta(days=2),
            published_at=published,
            reviewed_at=published - timedelta(days=1),
            next_review_due_at=published + timedelta(days=365),
            view_count=(n * 7919) % 5000,
        )
        article.render_body()
        articles.append(article)
    with transaction.atomic():
        created = Article.objects.bulk_create(articles, batch_size=500)
        Article.tags.through.objects.bulk_create(
            [
                Article.tags.through(article_id=a.pk, tag_id=tags[(i + k) % len(tags)].pk)
                for i, a in enumerate(created)
                for k in range(2)
            ]
        )
        Source.objects.bulk_create(
            [
                Source(
                    article=a,
                    title=f"Clinical guideline {k + 1} for {a.title[:60]}",
                    url=f"https://example.org/g/{a.pk}/{k}",
                    position=k,
                )
                for a in created
                for k in range(3)
            ]
        )
        today = now.date()
        ArticleViewDay.objects.bulk_create(
            [
                ArticleViewDay(article=a, day=today - timedelta(days=d), views=(a.pk * 31 + d * 17) % 200)
                for a in created
                for d in range(30)
            ],
            batch_size=5000,
        )
    return len(created)


def published_article_slug() -> str | None:
    from articles.models import Article

    return Article.objects.published().order_by("-view_count").values_list("slug", flat=True).first()


# --- Questions ------------------------------------------------------------------------------

DESCRIPTION = (
    "For about two weeks I have had symptoms that come and go. They are worse in the evening and "
    "after exercise, and better after rest. I have not taken any new medicine. I would like to know "
    "whether I should see someone in person or whether this can wait."
)

# One of the DOCTORS_PER_SPECIALTY doctors of the row's specialty.
DOCTOR_OF_SPECIALTY = (
    "(%(doctors)s::bigint[])[1 + (s.i %% %(specialty_count)s) * %(per)s + (s.i / %(specialty_count)s) %% %(per)s]"
)

# Expressions for the history rows, over `s.i` (the series) and `s.sub` (submitted_at).
# A column the model gains later gets its Python default (see _column_sql).
HISTORY_SQL = {
    "patient_id": "(%(patients)s::bigint[])[1 + s.i %% %(patient_count)s]",
    "specialty_id": "(%(specialties)s::bigint[])[1 + s.i %% %(specialty_count)s]",
    "title": "'Question ' || s.i || ' about ' || (ARRAY['a rash','a cough','knee pain','sleep'])[1 + s.i %% 4]",
    "description": "%(description)s || ' (' || s.i || ')'",
    "age": "18 + s.i %% 70",
    "sex": "(ARRAY['female','male','other'])[1 + s.i %% 3]",
    "medical_history": "''",
    "current_medication": "''",
    "status": "CASE WHEN s.i %% 10 < 7 THEN 'answered' ELSE 'closed' END",
    "is_urgent": "s.i %% 50 = 0",
    "red_flags": "'[]'::jsonb",
    "submitted_at": "s.sub",
    "due_at": "s.sub + CASE WHEN s.i %% 50 = 0 THEN %(urgent_window)s ELSE %(window)s END",
    # Most answers arrive within the window; about one in six is late (missed).
    "first_answered_at": "s.sub + s.answer_after",
    "answered_by_id": DOCTOR_OF_SPECIALTY,
    "clock_started_at": "NULL",
    "clock_warn_at": "NULL",
    "clock_due_at": "NULL",
    "clock_paused_at": "NULL",
    "is_follow_up": "false",
    "warned_at": "CASE WHEN s.answer_after > %(warn_after)s THEN s.sub + %(warn_after)s END",
    "breached_at": "CASE WHEN s.answer_after > %(window)s THEN s.sub + %(window)s END",
    "lead_escalated_at": "NULL",
    "sweep_error": "''",
    "sweep_retry_at": "NULL",
    "claimed_by_id": DOCTOR_OF_SPECIALTY,
    "claimed_at": "s.sub + interval '5 minutes'",
    "rating": "CASE WHEN s.i %% 3 = 0 THEN 1 + s.i %% 5 END",
    "rating_comment": "''",
    "rated_at": "CASE WHEN s.i %% 3 = 0 THEN s.sub + interval '1 day' END",
    "closed_at": "CASE WHEN s.i %% 10 >= 7 THEN s.sub + interval '3 days' END",
    "updated_at": "now()",
}


def _column_sql(expressions: dict[str, str], params: dict) -> tuple[list[str], list[str]]:
    """Columns and expressions for every concrete Question field; unknown fields take their default."""
    columns, values = [], []
    for model_field in Question._meta.concrete_fields:
        if model_field.primary_key:
            continue
        columns.append(connection.ops.quote_name(model_field.column))
        if model_field.column in expressions:
            values.append(expressions[model_field.column])
        elif model_field.has_default():
            key = f"default_{model_field.column}"
            params[key] = model_field.get_db_prep_save(model_field.get_default(), connection)
            values.append(f"%({key})s")
        elif model_field.null:
            values.append("NULL")
        else:
            raise RuntimeError(f"bench/data.py does not know how to fill Question.{model_field.name}")
    return columns, values


def _window_params(people: People) -> dict:
    window = timedelta(hours=settings.SLA_ANSWER_HOURS)
    return {
        "patients": people.patient_ids,
        "patient_count": len(people.patient_ids),
        "specialties": people.specialty_ids,
        "specialty_count": len(people.specialty_ids),
        "doctors": people.doctor_ids,
        "per": DOCTORS_PER_SPECIALTY,
        "description": DESCRIPTION,
        "window": window,
        "urgent_window": timedelta(hours=settings.SLA_URGENT_ANSWER_HOURS),
        "warn_after": window * settings.SLA_WARN_FRACTION,
    }


# One stored question every HISTORY_PACE, going back in time: a larger store is a longer
# history at the same traffic, so the last 30 days (what the dashboard reports) hold the
# same questions at 10^5, 10^6 and 10^7 stored (10^7 reaches back about 9.5 years).
HISTORY_PACE = timedelta(seconds=30)


def _history_sql(people: People) -> tuple[str, dict]:
    params = {**_window_params(people), "pace": HISTORY_PACE}
    columns, values = _column_sql(HISTORY_SQL, params)
    # Answer delays spread over 1.5 windows, so about a third are late.
    sql = (
        # Column names come from the model and expressions from this module: no user input.
        f"INSERT INTO consultations_question ({', '.join(columns)}) "  # noqa: S608
        f"SELECT {', '.join(values)} FROM ("
        "  SELECT g.i,"
        "         now() - interval '1 day' - g.i * %(pace)s AS sub,"
        "         (%(window)s * 1.5) * ((g.i * 7919) %% 1000) / 1000.0 + interval '2 minutes' AS answer_after"
        "  FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(i)"
        ") AS s"
    )
    return sql, params


@contextmanager
def _without_foreign_key_checks(cursor):
    """Skip the per-row foreign-key triggers for this session (superuser only; else they run).

    Every id the history rows reference comes from the People just created, so
    the checks could not fail; they cost about 70 s per million rows, ten times
    the insert itself.
    """
    try:
        with transaction.atomic():
            cursor.execute("SET session_replication_role = replica")
    except DatabaseError:
        yield
        return
    try:
        yield
    finally:
        cursor.execute("SET session_replication_role = DEFAULT")


def add_history(people: People, count: int, first_index: int, chunk: int = 250_000, progress=None) -> None:
    """Insert `count` answered or closed questions, one every HISTORY_PACE back from yesterday, in chunks."""
    sql, params = _history_sql(people)
    done = 0
    with connection.cursor() as cursor, _without_foreign_key_checks(cursor):
        while done < count:
            size = min(chunk, count - done)
            cursor.execute(sql, {**params, "first": first_index + done, "last": first_index + done + size - 1})
            done += size
            if progress:
                progress(done, count)
        cursor.execute("ANALYZE consultations_question")


def add_due(people: People, count: int = DUE_COUNT) -> list[int]:
    """`count` open questions past due (by up to an hour), warned earlier, not yet breached."""
    params = _window_params(people)
    expressions = {
        **HISTORY_SQL,
        "title": "'Due question ' || s.i",
        "status": "'open'",
        "is_urgent": "false",
        "submitted_at": "s.sub",
        "due_at": "s.sub + %(window)s",
        "first_answered_at": "NULL",
        "answered_by_id": "NULL",
        "clock_started_at": "s.sub",
        "clock_warn_at": "s.sub + %(warn_after)s",
        "clock_due_at": "s.sub + %(window)s",
        "warned_at": "s.sub + %(warn_after)s + interval '10 seconds'",
        "breached_at": "NULL",
        # Half are claimed by a doctor of the specialty, half wait in the queue.
        "claimed_by_id": f"CASE WHEN s.i %% 2 = 0 THEN {DOCTOR_OF_SPECIALTY} END",
        "claimed_at": "CASE WHEN s.i %% 2 = 0 THEN s.sub + interval '5 minutes' END",
        "rating": "NULL",
        "rated_at": "NULL",
        "closed_at": "NULL",
    }
    columns, values = _column_sql(expressions, params)
    sql = (
        f"INSERT INTO consultations_question ({', '.join(columns)}) "  # noqa: S608
        f"SELECT {', '.join(values)} FROM ("
        "  SELECT g.i, now() - %(window)s - interval '1 minute' - (g.i %% 60) * interval '1 minute' AS sub"
        "  FROM generate_series(1, %(count)s::bigint) AS g(i)"
        ") AS s RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, {**params, "count": count})
        ids = [row[0] for row in cursor.fetchall()]
        cursor.execute("ANALYZE consultations_question")
    return ids


def reset_due(ids: list[int]) -> None:
    """Put the due questions back as they were before a sweep escalated them."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM consultations_notification WHERE question_id = ANY(%s)", [ids])
        cursor.execute("DELETE FROM consultations_escalation WHERE question_id = ANY(%s)", [ids])
        cursor.execute("DELETE FROM consultations_breachcredit WHERE question_id = ANY(%s)", [ids])
        cursor.execute(
            "UPDATE consultations_question SET breached_at = NULL, lead_escalated_at = NULL, "
            "sweep_error = '', sweep_retry_at = NULL, warned_at = clock_warn_at + interval '10 seconds' "
            "WHERE id = ANY(%s)",
            [ids],
        )


def answer_due(ids: list[int]) -> None:
    """Retire the sweep's due set (answered, clock stopped) and its escalation e-mails."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM consultations_notification WHERE question_id = ANY(%s)", [ids])
        cursor.execute(
            "UPDATE consultations_question SET status = 'answered', first_answered_at = now(), "
            "clock_started_at = NULL, clock_warn_at = NULL, clock_due_at = NULL WHERE id = ANY(%s)",
            [ids],
        )


def clear_questions() -> None:
    """Drop every question and what hangs off it (replies, escalations, notifications, logs)."""
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE consultations_question, consultations_sweeprun CASCADE")  # credits too
        cursor.execute("TRUNCATE consultations_notification")


def question_count() -> int:
    return Question.objects.count()


def random_patients(people: People, count: int, seed: int = 7) -> list[str]:
    return random.Random(seed).sample(people.patient_emails, count)
