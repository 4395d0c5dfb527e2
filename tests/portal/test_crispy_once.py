"""`as_crispy_field_once` (portal/templatetags/crispy_once.py, issue 17): the ask form's
fields rendered by crispy once per process, without ever mixing one person's page
into another's."""

import pytest
from crispy_forms.templatetags.crispy_forms_filters import as_crispy_field
from django.urls import reverse
from django.utils.html import escape

from consultations.forms import AskForm
from consultations.models import QuestionDraft
from portal.templatetags import crispy_once
from tests.factories import SpecialtyFactory, UserFactory

pytestmark = pytest.mark.django_db

ASK_URL = reverse("consultations:ask")
DRAFT_TITLE = "Ring-shaped rash after hiking"
DRAFT_DESCRIPTION = "Red spots on both forearms since Tuesday."


@pytest.fixture(autouse=True)
def _nothing_kept():
    crispy_once.forget_rendered()
    yield
    crispy_once.forget_rendered()


def kept_html() -> str:
    return "".join(crispy_once._rendered.values())


def test_a_kept_field_is_exactly_what_crispy_renders(specialty, other_specialty):
    def form():  # one per showing, as in the view: crispy adds its classes to the widgets it renders
        return AskForm(initial={"specialty": other_specialty.pk, "age": 40, "sex": "male"})

    for name in ("specialty", "title", "description", "age", "sex", "attachments", "consent"):
        first = crispy_once.as_crispy_field_once(form()[name])
        assert first == as_crispy_field(form()[name])
        assert crispy_once.as_crispy_field_once(form()[name]) is first  # kept


def test_each_patient_sees_their_own_age_and_sex(client, specialty):
    pia = UserFactory(email="pia@example.com", age=34, sex="female")
    max_ = UserFactory(email="max@example.com", age=71, sex="male")
    client.force_login(pia)
    client.get(ASK_URL)
    client.force_login(max_)
    html = client.get(ASK_URL).content.decode()
    assert 'name="age" value="71"' in html and 'value="34"' not in html
    assert '<option value="male" selected>' in html and '<option value="female" selected>' not in html


def test_a_draft_is_shown_to_its_owner_and_never_kept(client, patient, other_patient, specialty):
    QuestionDraft.objects.create(token_hash="a" * 64, owner=patient, title=DRAFT_TITLE, description=DRAFT_DESCRIPTION)
    client.force_login(patient)
    mine = client.get(ASK_URL).content.decode()
    assert escape(DRAFT_TITLE) in mine and escape(DRAFT_DESCRIPTION) in mine
    assert DRAFT_TITLE not in kept_html() and DRAFT_DESCRIPTION not in kept_html()

    client.force_login(other_patient)
    theirs = client.get(ASK_URL).content.decode()
    assert DRAFT_TITLE not in theirs and DRAFT_DESCRIPTION not in theirs


def test_a_redisplayed_form_shows_what_was_typed_and_keeps_none_of_it(client, patient, specialty):
    client.force_login(patient)
    client.get(ASK_URL)  # every empty field kept
    typed = {
        "specialty": str(specialty.pk),
        "title": "Sore throat for ten days",
        "description": "",  # missing: the form comes back
        "age": "34",
        "sex": "female",
        "medical_history": "Tonsils removed at 12.",
        "current_medication": "Ibuprofen 400 mg.",
        "consent": "on",
    }
    html = client.post(ASK_URL, typed).content.decode()
    assert "Describe your symptoms or your question." in html
    assert 'value="Sore throat for ten days"' in html
    assert ">\nTonsils removed at 12.</textarea>" in html
    assert ">\nIbuprofen 400 mg.</textarea>" in html
    assert "Sore throat" not in kept_html() and "Tonsils" not in kept_html()


def test_a_new_specialty_is_offered_at_once(client, patient, specialty):
    client.force_login(patient)
    client.get(ASK_URL)
    added = SpecialtyFactory(name="Neurology", slug="neurology")
    html = client.get(ASK_URL).content.decode()
    assert f'<option value="{added.pk}">Neurology</option>' in html


def test_a_changed_limit_changes_the_help_text(client, patient, specialty, settings):
    client.force_login(patient)
    client.get(ASK_URL)
    settings.QUESTION_MAX_ATTACHMENTS = 2
    assert "Up to 2 files" in client.get(ASK_URL).content.decode()


def test_free_text_and_bound_forms_are_never_keys(specialty):
    unbound = AskForm(initial={"title": DRAFT_TITLE})
    assert crispy_once.field_key(unbound["title"], "bootstrap5", "", "") is None
    assert crispy_once.field_key(unbound["age"], "bootstrap5", "", "") is not None
    bound = AskForm(data={"title": "x"})
    assert crispy_once.field_key(bound["age"], "bootstrap5", "", "") is None
