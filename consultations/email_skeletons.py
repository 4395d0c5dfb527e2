"""Many e-mails of a few kinds, each template rendered once (the SLA sweep's e-mails, and
every question's receipt: services.receipt_email keeps one per process and language).

A sweep that escalates 1,000 questions writes about 4,000 e-mails, and rendering
their templates was a fifth of its CPU. The e-mails of a kind differ only in a few
printed values (a question's number, its due time, a link) and in a few flags that
the templates' tags test (a follow-up, urgent, never warned). `EmailSkeletons`
renders each kind once per combination of its `fixed` values (what tags test),
with a marker wherever a `filled` value is printed, and makes each e-mail by
putting its own values in place of the markers: the same text as rendering it.

The templates' side of the bargain, checked for every escalation level's, the
apology's and the receipt's templates by tests/consultations/test_email_skeletons.py: a filled value
is only ever printed as it is (`{{ name }}` or `{{ name.attribute }}`, no filter),
and only fixed values are tested by tags. Should a filter change a marker after
all, the marker does not come out whole, and that e-mail is rendered on its own.
"""

from types import SimpleNamespace

from django.utils.translation import get_language

from consultations.notifications import finish_email, render_templates

MARK = "\x00"  # never in a value: PostgreSQL text cannot hold it, and one that did is rendered on its own


def marker(name: str) -> str:
    return f"{MARK}{name}{MARK}"


def context_with(filled: dict[str, str], value=lambda name, given: given) -> dict:
    """The template context of `filled`: "question.pk" becomes `question` with a `pk`."""
    context: dict = {}
    for name, given in filled.items():
        head, _, attribute = name.partition(".")
        if attribute:
            setattr(context.setdefault(head, SimpleNamespace()), attribute, value(name, given))
        else:
            context[name] = value(name, given)
    return context


class EmailSkeletons:
    """Renders e-mails of the same kinds with their templates rendered once per combination
    of `fixed` values. Keep one per batch of e-mails (a sweep batch): it holds every
    combination it has rendered."""

    def __init__(self):
        self._skeletons: dict[tuple, tuple[str, str]] = {}
        self.rendered = 0  # how many times templates were rendered (for tests and profiling)
        # The language the batch is written in (its skeletons keep the text of the first
        # rendering): the values filled in, such as due times, are formatted in it too,
        # read once here rather than once per value.
        self.language = get_language()

    def render(self, kind: str, fixed: dict, filled: dict[str, str]) -> tuple[str, str]:
        """(subject, body) of `kind` with these values, as notifications.render_email gives them."""
        key = (kind, tuple(sorted(fixed.items())), tuple(sorted(filled)))
        if key not in self._skeletons:
            self._skeletons[key] = self._render(kind, {**fixed, **context_with(filled, lambda name, _: marker(name))})
        if any(MARK in value for value in filled.values()):
            # It could pass for a marker put in before it: this e-mail on its own.
            return finish_email(*self._render(kind, {**fixed, **context_with(filled)}))
        subject, body = self._skeletons[key]
        for name, value in filled.items():
            subject, body = subject.replace(marker(name), value), body.replace(marker(name), value)
        if MARK in subject or MARK in body:
            # A marker a filter changed: this e-mail on its own.
            subject, body = self._render(kind, {**fixed, **context_with(filled)})
        return finish_email(subject, body)

    def _render(self, kind: str, context: dict) -> tuple[str, str]:
        self.rendered += 1
        return render_templates(kind, context)
