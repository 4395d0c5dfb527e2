import pytest

pytestmark = pytest.mark.django_db


def test_home_page_renders(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"Ask a doctor" in response.content


def test_healthz_answers_in_one_word(client):
    response = client.get("/healthz")
    assert (response.status_code, response.content) == (200, b"ok\n")
