"""The demo's data files: every file parses, every entry is seeded, and a mistake in a file
stops the seeding with the entry at fault instead of silently leaving something out."""

import ast
from datetime import time, timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from articles import demo as articles_demo
from articles.models import Article
from consultations import demo, demo_data
from consultations.demo_plans import BreachingSoon
from consultations.models import DoctorProfile, DutyPeriod, Question, Specialty
from portal.demo import seed_demo
from tests.demo_files import content_copy


@pytest.fixture
def content_dir(tmp_path, monkeypatch):
    """A copy of consultations/demo_content/ to break, read instead of the real one."""
    yield from content_copy(tmp_path, monkeypatch, demo_data, demo_data.load)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_every_data_file_is_read():
    assert sorted(p.name for p in demo_data.CONTENT_DIR.iterdir()) == sorted(demo_data.FILES)
    content = demo.content()
    assert len(content.specialties) == 8 and len(content.patients) == 3 and len(content.doctors) == 14
    assert len(content.questions) == 25
    article_files = [p for p in articles_demo.CONTENT_DIR.iterdir() if p.suffix == ".md"]
    assert len(articles_demo.demo_articles()) == len(article_files) == 14


@pytest.mark.django_db
def test_every_entry_of_every_data_file_is_seeded():
    content = demo.content()
    result = seed_demo()

    assert set(Specialty.objects.values_list("slug", flat=True)) == {s.slug for s in content.specialties}
    people = [p.email for p in content.patients] + [d.email for d in content.doctors] + [content.staff.email]
    assert sorted(get_user_model().objects.values_list("email", flat=True)) == sorted(people)
    for doctor in content.doctors:
        profile = DoctorProfile.objects.get(user__email=doctor.email)
        assert set(profile.specialties.values_list("slug", flat=True)) == set(doctor.specialties)
        periods = DutyPeriod.objects.filter(doctor=profile).count()
        assert periods == sum(len(weekdays) for weekdays, _start, _end in doctor.schedule), doctor.email
        assert profile.off_duty == doctor.off_duty
    seeded = sorted(Question.objects.values_list("patient__email", "title"))
    assert seeded == sorted((q.patient, q.title) for q in content.questions)
    slugs = [a.slug for a in articles_demo.demo_articles()]
    assert result.articles == len(slugs)
    assert sorted(Article.objects.values_list("slug", flat=True)) == sorted(slugs)


def test_relative_times_come_from_the_data():
    soon = next(q for q in demo.content().questions if isinstance(q.plan, BreachingSoon))
    assert soon.title == "Earache since swimming at the weekend"
    assert (soon.plan.warn_in, soon.plan.due_in) == (timedelta(minutes=1), timedelta(minutes=3))
    nora = next(d for d in demo.content().doctors if d.email == demo.DOCTOR_EMAIL)
    assert nora.schedule == ((tuple(range(7)), time(7), time(19)),)


@pytest.mark.parametrize(
    ("name", "old", "new", "message"),
    [
        ("people.toml", 'time_zone = "Europe/Warsaw"', 'time_zone = "Europe/Warsaw"\nnickname = "J"', "unknown key"),
        ("people.toml", 'time_zone = "Europe/Warsaw"\n', "", "missing key"),
        ("people.toml", "age = 34", 'age = "34"', "age should be of type int"),
        ("people.toml", 'shift = "day"', 'shift = "dawn"', "shift must be one of"),
        ("people.toml", '["mon", "tue", "wed", "thu", "fri"]', '["mon", "tue", "wed", "thu", "friday"]', "weekdays"),
        ("people.toml", 'specialties = ["orthopedics"]', 'specialties = ["orthopaedics"]', "unknown specialties"),
        ("questions.toml", '\nkind = "waiting"', '\nkind = "sleeping"', "kind must be one of"),
        ("questions.toml", "warn_in = { minutes = 1 }", "warn_in = { minutes = 1.5 }", "whole numbers"),
        ("questions.toml", "warn_in = { minutes = 1 }", "warn_in = 1", "a duration is a table"),
        ("questions.toml", "due_ago = { minutes = 40 }\n", "", "missing key(s) due_ago"),
        ("questions.toml", 'patient = "priya.shah@example.com"', 'patient = "priya@example.com"', "not a demo patient"),
        ("questions.toml", 'claimed_by = "doctor@example.com"', 'claimed_by = "dr@example.com"', "not a demo doctor"),
        ("specialties.toml", 'slug = "cardiology"', 'slug = "dermatology"', "share 'dermatology'"),
        ("specialties.toml", "[[specialty]]", "[[specialty]", "specialties.toml"),
    ],
)
def test_a_mistake_in_a_data_file_is_reported_not_skipped(content_dir, name, old, new, message):
    edit(content_dir / name, old, new)
    with pytest.raises(demo_data.DemoContentError) as error:
        demo_data.load()
    assert message in str(error.value)


def test_the_published_logins_must_be_in_the_data(content_dir):
    edit(content_dir / "people.toml", 'email = "staff@example.com"', 'email = "ops@example.com"')
    with pytest.raises(demo_data.DemoContentError, match="staff@example.com"):
        demo.content()


def test_the_consultations_demo_does_not_import_the_articles_app():
    for module in ("demo.py", "demo_data.py", "demo_plans.py"):
        tree = ast.parse((Path(demo.__file__).parent / module).read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert not {name for name in imported if name and name.split(".")[0] == "articles"}, module
