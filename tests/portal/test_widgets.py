"""PlainHiddenInput writes what Django's widget templates write, without them."""

import uuid

import pytest
from django import forms
from django.utils.safestring import mark_safe

from consultations.forms import AskForm
from portal.widgets import PlainHiddenInput

VALUES = [
    None,
    "",
    "plain",
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    42,
    'quote " and <tag> & ampersand',
    mark_safe("<b>already safe</b>"),
]
ATTRS = [
    None,
    {"id": "id_token"},
    {"id": "id_x", "data-note": 'a "b" <c>', "disabled": True, "required": False},
    {"class": "one two", "aria-describedby": "help"},
    {"data-called": lambda: "called <x>", "data-off": lambda: False},
]


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("attrs", ATTRS)
def test_same_html_as_djangos_hidden_input(value, attrs):
    assert PlainHiddenInput().render("token", value, attrs) == forms.HiddenInput().render("token", value, attrs)


def test_widget_attrs_and_escaped_name_as_django():
    widget_attrs = {"data-a": "1", "autocomplete": "off"}
    plain = PlainHiddenInput(attrs=widget_attrs).render('na"me', "v", {"id": "i"})
    django = forms.HiddenInput(attrs=widget_attrs).render('na"me', "v", {"id": "i"})
    assert plain == django
    assert "na&quot;me" in plain


def test_bound_field_of_the_ask_form_as_django():
    """Through the form (BoundField.as_widget adds the id), shown and redisplayed."""
    for form in (AskForm(), AskForm(data={"submission_token": "not-a-uuid", "title": "x"})):
        field = form["submission_token"]
        expected = forms.HiddenInput().render(
            field.html_name, field.field.widget.format_value(field.value()), {"id": field.auto_id}
        )
        assert str(field) == expected
        assert str(field).startswith('<input type="hidden" name="submission_token" value="')
