"""Widgets that render without the template engine (issue 17).

Django renders every widget through its form renderer: the hidden submission token of
the ask form alone went through three templates (hidden.html, input.html, attrs.html),
about a tenth of the CPU of showing the form. The HTML of a hidden input is one line, so
`PlainHiddenInput` writes that line itself, character for character what Django's
templates write (tests/portal/test_widgets.py compares the two). Its context still comes
from Django's `get_context`, so the value is formatted and the attributes are built as
for any input.

Used where a page is shown often (the ask form). It assumes no template overrides
Django's widget templates (the portal has none): an override of
`django/forms/widgets/input.html` would not be seen here.
"""

from django import forms
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe


def _attributes(attrs: dict) -> str:
    """Django's attrs.html: a False value leaves the attribute out, True writes its name alone;
    a callable is called, as the template language does."""
    out = []
    for name, value in attrs.items():
        if callable(value) and not getattr(value, "do_not_call_in_templates", False):
            value = value()
        if value is False:
            continue
        out.append(f" {conditional_escape(name)}")
        if value is not True:
            out.append(f'="{conditional_escape(str(value))}"')
    return "".join(out)


class PlainHiddenInput(forms.HiddenInput):
    def render(self, name, value, attrs=None, renderer=None):
        widget = self.get_context(name, value, attrs)["widget"]
        shown = widget["value"]
        value_html = "" if shown is None else f' value="{conditional_escape(str(shown))}"'
        return mark_safe(
            f'<input type="{conditional_escape(widget["type"])}" name="{conditional_escape(widget["name"])}"'
            f"{value_html}{_attributes(widget['attrs'])}>"
        )
