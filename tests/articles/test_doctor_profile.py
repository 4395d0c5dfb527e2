"""The public doctor profile page."""

from datetime import timedelta

import pytest

from tests.articles.factories import ArticleFactory
from tests.factories import QuestionFactory

pytestmark = pytest.mark.django_db


def test_profile_lists_articles_written_and_reviewed_and_questions_answered(client, doctor, reviewer, specialty):
    doctor.qualifications = "MD, dermatologist"
    doctor.bio = "Fifteen years of treating skin conditions."
    doctor.save()
    written = ArticleFactory(author=doctor, reviewer=reviewer, specialty=specialty, title="Sun protection basics")
    reviewed = ArticleFactory(author=reviewer, reviewer=doctor, specialty=specialty, title="Treating warts at home")
    ArticleFactory(draft=True, author=doctor, specialty=specialty, title="Unfinished piece")
    for _ in range(3):
        QuestionFactory(specialty=specialty, answered_after=timedelta(hours=1), answered_by=doctor, is_urgent=False)
    QuestionFactory(specialty=specialty, answered_after=timedelta(hours=1), answered_by=reviewer, is_urgent=False)

    response = client.get(doctor.get_absolute_url())
    html = response.content.decode()
    assert response.status_code == 200
    assert "<h1" in html and "Dr. Dana Derm" in html
    assert "MD, dermatologist" in html
    assert "Dermatology" in html
    assert "Fifteen years of treating skin conditions." in html
    assert 'data-testid="questions-answered">3<' in html
    written_block = html.split('id="written-heading"', 1)[1].split("</section>", 1)[0]
    reviewed_block = html.split('id="reviewed-heading"', 1)[1].split("</section>", 1)[0]
    assert written.title in written_block and reviewed.title not in written_block
    assert reviewed.title in reviewed_block and written.title not in reviewed_block
    assert "Unfinished piece" not in html
    assert "?specialty=dermatology" in html


def test_unverified_doctor_has_no_public_profile(client, unverified_doctor):
    assert client.get(unverified_doctor.get_absolute_url()).status_code == 404


def test_unknown_doctor_is_404(client):
    assert client.get("/doctors/nobody/").status_code == 404


def test_profile_query_count_does_not_grow_with_articles(
    client, doctor, reviewer, specialty, django_assert_num_queries
):
    ArticleFactory(author=doctor, reviewer=reviewer, specialty=specialty)
    with django_assert_num_queries(5) as few:
        client.get(doctor.get_absolute_url())
    for _ in range(10):
        ArticleFactory(author=doctor, reviewer=reviewer, specialty=specialty)
        ArticleFactory(author=reviewer, reviewer=doctor, specialty=specialty)
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(doctor.get_absolute_url())
