"""The sweep's e-mails are rendered once per kind and flags, each e-mail's values put in
afterwards (consultations/email_skeletons.py). What must hold: the text is exactly what
rendering each e-mail would give, and the templates keep their side of it (a value put in
afterwards is only printed as it is, never filtered or tested by a tag)."""

import itertools
from datetime import UTC, datetime, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.template import Variable
from django.template.base import FilterExpression, TextNode, VariableNode
from django.template.defaulttags import AutoEscapeControlNode, IfNode
from django.template.loader import get_template
from django.utils import timezone

from consultations import credits, email_skeletons, levels, services, sweep
from consultations.email_skeletons import EmailSkeletons, context_with
from consultations.notifications import render_email
from portal import times
from tests.consultations.sweep_support import breached_by, question_started, sla_staff_member
from tests.factories import QuestionFactory

pytestmark = pytest.mark.django_db

# Given to every template by notifications.render_templates.
ALWAYS = {"SITE_URL", "SLA_ANSWER_HOURS"}


def used_names(sweep_now, specialty, senior_doctor) -> dict[str, tuple[set, set]]:
    """Run real sweeps over questions due for every level; what each kind was given:
    {kind: (fixed names, filled names)}."""
    sla_staff_member()
    breached_by(sweep_now, specialty)  # breached now
    breached_by(sweep_now, specialty, is_urgent=True, is_follow_up=False)
    question_started(sweep_now - timedelta(hours=3, minutes=30), specialty)  # at risk
    lead = breached_by(sweep_now, specialty, late=timedelta(hours=9))  # long overdue: breached, then lead
    seen: dict[str, tuple[set, set]] = {}
    real = EmailSkeletons.render

    def record(self, kind, fixed, filled):
        names = seen.setdefault(kind, (set(), set()))
        names[0].update(fixed)
        names[1].update(filled)
        return real(self, kind, fixed, filled)

    with mock.patch.object(EmailSkeletons, "render", record):
        sweep.run_sweep(now=sweep_now)
        sweep.run_sweep(now=sweep_now + timedelta(seconds=1))
    assert lead.escalations.filter(level="lead").exists(), "no question reached the lead level"
    return seen


def names_in(template_name: str) -> tuple[list[tuple[str, list]], set[str], list[str]]:
    """(printed variables with their filters, variables tags test, other kinds of node) of a template."""
    nodelist = get_template(template_name).template.nodelist
    printed = [
        (str(node.filter_expression.var), node.filter_expression.filters)
        for node in nodelist.get_nodes_by_type(VariableNode)
    ]
    tested: set[str] = set()
    for node in nodelist.get_nodes_by_type(IfNode):
        for condition, _ in node.conditions_nodelists:
            tested |= _condition_names(condition)
    allowed = (TextNode, VariableNode, IfNode, AutoEscapeControlNode)
    others = [type(node).__name__ for node in _all_nodes(nodelist) if not isinstance(node, allowed)]
    return printed, tested, others


def _condition_names(condition) -> set[str]:
    if condition is None:
        return set()
    value = getattr(condition, "value", None)
    if isinstance(value, FilterExpression):
        return {str(value.var)} if isinstance(value.var, Variable) else set()
    return _condition_names(getattr(condition, "first", None)) | _condition_names(getattr(condition, "second", None))


def _all_nodes(nodelist):
    for node in nodelist:
        yield node
        for attribute in getattr(node, "child_nodelists", ()):
            yield from _all_nodes(getattr(node, attribute, None) or [])
        for _, branch in getattr(node, "conditions_nodelists", ()):
            yield from _all_nodes(branch)


def test_the_templates_print_filled_values_as_they_are_and_test_only_fixed_ones(specialty, senior_doctor):
    seen = used_names(timezone.now(), specialty, senior_doctor)
    assert set(seen) == {level.kind for level in levels.LEVELS} | {credits.APOLOGY_KIND}
    for kind, (fixed, filled) in seen.items():
        assert_keeps_the_skeleton_rule(kind, fixed, filled)


def assert_keeps_the_skeleton_rule(kind: str, fixed: set, filled: set) -> None:
    """The kind's two templates print only what they are given, filled values unfiltered,
    and test only fixed ones, with no tag the skeletons do not know."""
    for template_name in (f"emails/{kind}.txt", f"emails/{kind}_subject.txt"):
        printed, tested, others = names_in(template_name)
        assert others == [], f"{template_name}: tags the skeletons do not know: {others}"
        for name, filters in printed:
            assert name in fixed | filled | ALWAYS, f"{template_name} prints {name!r}, which it is not given"
            if name in filled:
                assert not filters, f"{template_name} filters {name!r}, a value put in after rendering"
        assert tested <= fixed | ALWAYS, f"{template_name} tests {tested - fixed - ALWAYS}, values put in after"


VALUES = {
    "question.pk": "4711",
    "patient_label": "Patient P-000123",
    "specialty": "Ear, nose & throat",
    "due": "Sunday 26 October 2025, 02:30 CET",
    "due_time": "02:30 CET",
    "url": "https://clinic.example/doctor/consultations/question/4711/change/",
}
ODD_VALUES = {
    **VALUES,
    "specialty": "Skin  {{ url }} {% if x %}$1 \\1 <b>&amp;</b>\nnew line",
    "patient_label": "Pätient — 名前",
}


@pytest.mark.parametrize("values", [VALUES, ODD_VALUES], ids=["plain", "odd"])
def test_a_filled_e_mail_is_exactly_the_rendered_one(values):
    """Every level's e-mail and the apology, every combination of their flags, plain values
    and values with braces, tags, backslashes, spaces and a new line (the subject's
    whitespace is folded after the values are in, as when rendering)."""
    skeletons = EmailSkeletons()
    for level in levels.LEVELS:
        for is_follow_up, is_urgent, never_warned in itertools.product((False, True), repeat=3):
            fixed = {"is_follow_up": is_follow_up, "is_urgent": is_urgent, "never_warned": never_warned}
            expected = render_email(level.kind, {**fixed, **context_with(values)})
            assert skeletons.render(level.kind, fixed, values) == expected
    apology_values = {name: values[name] for name in ("question.pk", "due", "due_time", "url")}
    for is_follow_up, credit_text in itertools.product((False, True), ("", "a free follow-up question")):
        fixed = {"is_follow_up": is_follow_up, "credit_text": credit_text}
        expected = render_email(credits.APOLOGY_KIND, {**fixed, **context_with(apology_values)})
        assert skeletons.render(credits.APOLOGY_KIND, fixed, apology_values) == expected
    # Rendered once per kind and flags, however many e-mails were filled.
    again = skeletons.rendered
    skeletons.render(levels.LEVELS[0].kind, {"is_follow_up": False, "is_urgent": False, "never_warned": False}, values)
    assert skeletons.rendered == again == 3 * 8 + 4


def test_a_value_holding_the_marker_character_is_rendered_on_its_own():
    skeletons = EmailSkeletons()
    fixed = {"is_follow_up": False, "is_urgent": False, "never_warned": False}
    values = {**VALUES, "specialty": "Skin\x00url\x00"}
    kind = levels.LEVELS[1].kind
    assert skeletons.render(kind, fixed, values) == render_email(kind, {**fixed, **context_with(values)})
    assert skeletons.rendered == 2


def test_a_template_that_filters_a_value_gets_it_rendered_per_e_mail():
    real = email_skeletons.render_templates

    def shouting(kind, context):
        return real(kind, {**context, "url": str(context["url"]).upper()})

    skeletons = EmailSkeletons()
    fixed = {"is_follow_up": False, "is_urgent": False, "never_warned": True}
    with mock.patch.object(email_skeletons, "render_templates", side_effect=shouting):
        _subject, body = skeletons.render("sla_breached", fixed, VALUES)
    assert VALUES["url"].upper() in body
    assert "\x00" not in body


# --- The ask form's receipt (services.receipt_email) ---------------------------------

RECEIPT_FIXED = {"is_urgent"}
RECEIPT_FILLED = {"question.pk", "question.title", "specialty", "due", "url"}


def test_the_receipt_templates_print_filled_values_as_they_are_and_test_only_fixed_ones():
    assert_keeps_the_skeleton_rule(services.RECEIPT_KIND, RECEIPT_FIXED, RECEIPT_FILLED)


@pytest.mark.parametrize(
    "title",
    ["Knee aches after running", "Skin  {{ url }} {% if x %}$1 \\1 <b>&amp;</b>\nnew line — 名前", "Odd\x00url\x00"],
    ids=["plain", "odd", "marker"],
)
@pytest.mark.parametrize("is_urgent", [False, True])
def test_a_receipt_is_exactly_its_rendered_templates(patient, specialty, title, is_urgent, monkeypatch):
    monkeypatch.setattr(services, "_receipt_skeletons", {})
    patient.time_zone = "Europe/Berlin"
    question = QuestionFactory(patient=patient, specialty=specialty, is_urgent=is_urgent)
    question.title = title
    zone = ZoneInfo("Europe/Berlin")
    expected = render_email(
        services.RECEIPT_KIND,
        {
            "is_urgent": is_urgent,
            "question": question,
            "specialty": specialty.name,
            "due": times.format_time(question.due_at, times.LONG_DATE_TIME, zone),
            "url": services.question_url(question),
        },
    )
    for _ in range(2):  # the first renders the skeleton, the second fills it in
        assert services.receipt_email(question) == expected
    subject, body = expected
    assert f"#{question.pk}" in subject and title not in subject
    assert f'"{title}"' in body and ("emergency number now (112" in body) == is_urgent
    assert times.format_time(question.due_at, times.LONG_DATE_TIME, zone) in body
    # As the template printed it before (a {% timezone %} block and |zoned), fall-back hour included.
    question.due_at = datetime(2025, 10, 26, 1, 30, tzinfo=UTC)
    assert "A doctor will answer by Sunday 26 October 2025, 02:30 CET.\n" in services.receipt_email(question)[1]
