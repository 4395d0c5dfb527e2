"""`{{ form.field|as_crispy_field_once }}`: crispy-forms' `as_crispy_field`, rendered once
per process for each showing that looks the same (issue 17).

crispy renders a field through half a dozen templates: about 1 ms of CPU per field, 10 ms
per showing of the ask form, more than the whole POST. An empty or pre-chosen field of a
form nobody has submitted yet renders to the same HTML every time, so the HTML is kept,
keyed by everything it is made of (`field_key`). crispy stays the renderer of record: a
miss, and every field of a submitted form (errors, what the patient typed), goes through
`as_crispy_field` itself.

Only values from a bounded set are kept (nothing, a choice, a whole number): a field
pre-filled with free text (a patient's saved draft) is rendered each time and never
stored, so no one's words sit in the process or could reach anyone else's page; the
HTML of a kept value is the same whoever it is shown to.

The key is taken before crispy renders: crispy adds its CSS classes to the widget's
attrs as it renders, which is why every showing needs its own form (as views make).
"""

from crispy_forms.templatetags.crispy_forms_filters import as_crispy_field
from crispy_forms.utils import TEMPLATE_PACK
from django import forms, template
from django.utils.translation import get_language

register = template.Library()

# Far more than the portal's forms need (each field x its few choices); a full cache is emptied.
MAX_ENTRIES = 2000
_rendered: dict[tuple, str] = {}


def _keepable(field: forms.BoundField, value) -> bool:
    """A value whose HTML may be kept: none, a choice of a choice field, a whole number."""
    if value is None or value == "" or isinstance(value, bool | int):
        return True
    return isinstance(field.field, forms.ChoiceField) and isinstance(value, str | int)


def field_key(field: forms.BoundField, template_pack: str, label_class: str, field_class: str):
    """Everything a field's crispy HTML depends on, or None when it must be rendered afresh:
    a submitted form, a form with a crispy helper, or a value outside `_keepable`."""
    form = field.form
    if form.is_bound or getattr(form, "helper", None) is not None:
        return None
    value = field.value()
    if callable(value) or not _keepable(field, value):
        return None
    widget = field.field.widget
    choices = None
    if isinstance(field.field, forms.ChoiceField):
        # A model choice field's queryset runs here once; the render on a miss reuses it.
        choices = tuple((str(choice), str(label)) for choice, label in field.field.choices)
    return (
        f"{type(form).__module__}.{type(form).__qualname__}",
        form.prefix,
        form.auto_id,
        form.use_required_attribute,
        form.label_suffix,
        field.name,
        get_language(),
        template_pack,
        label_class,
        field_class,
        str(field.label),
        str(field.help_text),
        field.field.required,
        field.field.disabled,
        f"{type(widget).__module__}.{type(widget).__qualname__}",
        tuple(sorted((name, str(attr)) for name, attr in widget.attrs.items())),
        choices,
        type(value).__name__,
        str(value),
    )


@register.filter(name="as_crispy_field_once")
def as_crispy_field_once(field, template_pack=TEMPLATE_PACK, label_class="", field_class=""):
    key = field_key(field, template_pack, label_class, field_class)
    if key is None:
        return as_crispy_field(field, template_pack, label_class, field_class)
    html = _rendered.get(key)
    if html is None:
        html = as_crispy_field(field, template_pack, label_class, field_class)
        if len(_rendered) >= MAX_ENTRIES:
            _rendered.clear()
        _rendered[key] = html
    return html


def forget_rendered() -> None:
    """Empty the kept HTML (tests)."""
    _rendered.clear()
