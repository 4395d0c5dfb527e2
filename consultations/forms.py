"""Patients' forms: asking a question, following up, rating the answer.

Limits come from the model fields so the form and the database never disagree.
"""

import copy
import functools
import uuid

from django import forms
from django.conf import settings
from django.utils.html import format_html

from consultations import uploads
from consultations.models import Question, Specialty
from portal.models import Sex
from portal.url_memo import reverse_plain
from portal.widgets import PlainHiddenInput


def _max_length(model, field_name: str) -> int:
    return model._meta.get_field(field_name).max_length


class TextField(forms.CharField):
    """A CharField that counts a line break as one character, as the browser's
    maxlength does: browsers submit "\\r\\n", which would otherwise count twice."""

    def to_python(self, value):
        value = super().to_python(value)
        return value.replace("\r\n", "\n") if value else value


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class AttachmentsField(forms.FileField):
    """Several files in one input; each is checked by `uploads`, not by Django's FileField."""

    widget = MultipleFileInput

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, data):
        if not data:
            return []
        return list(data) if isinstance(data, list | tuple) else [data]

    def clean(self, data, initial=None):
        files = self.to_python(data)
        # Validated and stripped of metadata here, so the view gets files ready to store.
        return uploads.prepare_attachments(files)

    def bound_data(self, _, initial):
        # Browsers cannot re-fill a file input: nothing to keep.
        return initial

    def has_changed(self, initial, data):
        return bool(data)


def legal_links_label(text: str):
    """A consent label linking the legal pages (looked up per form: URLs are not loaded at
    import, and a test's URLconf may move them)."""
    return _legal_links_html(text, reverse_plain("terms"), reverse_plain("privacy"), reverse_plain("disclaimer"))


@functools.lru_cache(maxsize=64)
def _legal_links_html(text: str, terms: str, privacy: str, disclaimer: str):
    # The same few labels and URLs every time: format_html's escaping once per process
    # for each (a fiftieth of a form page's CPU when done per form).
    return format_html(
        '{} <a href="{}" target="_blank">terms of use</a>, the <a href="{}" target="_blank">privacy policy</a> '
        'and the <a href="{}" target="_blank">medical disclaimer</a>.',
        text,
        terms,
        privacy,
        disclaimer,
    )


def attachments_help_text() -> str:
    limit_mb = settings.QUESTION_ATTACHMENT_MAX_BYTES // (1024 * 1024)
    return (
        f"Up to {settings.QUESTION_MAX_ATTACHMENTS} files, JPEG, PNG or PDF, {limit_mb} MB each. "
        "We remove the location and camera details from photos before storing them."
    )


class ListedChoiceIterator(forms.models.ModelChoiceIterator):
    """A short list's choices from one plain SELECT, kept on the field's queryset.

    Django's iterator() takes them through a server-side cursor on PostgreSQL
    (DECLARE ... WITH HOLD, FETCH, CLOSE): three round trips, on every showing of
    the ask form, for a handful of specialties."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        listed = self.field.listed if self.field.listed is not None else self.queryset
        for obj in listed:
            yield self.choice(obj)


class SpecialtyChoiceField(forms.ModelChoiceField):
    """The specialties come from `listed` when the view already has them (the kept duty
    roster, consultations.cover_cache, renewed by every write to a specialty): shown
    without a query, and a posted one found there without one either. A value not
    listed is looked up in the database, as by ModelChoiceField."""

    iterator = ListedChoiceIterator
    listed = None

    def to_python(self, value):
        if self.listed is not None and value not in self.empty_values:
            found = next((specialty for specialty in self.listed if str(specialty.pk) == str(value)), None)
            if found is not None:
                return copy.copy(found)  # the listed one may be shared by later requests
        return super().to_python(value)


ATTACHMENT_ACCEPT = "image/jpeg,image/png,application/pdf,.jpg,.jpeg,.png,.pdf"


class QuestionDraftForm(forms.Form):
    """What a visitor may type before signing up or logging in (issue 15, question first)."""

    specialty = SpecialtyChoiceField(
        queryset=Specialty.objects.all(),
        empty_label="Choose a specialty",
        error_messages={"required": "Choose the specialty your question is for."},
    )
    title = TextField(
        max_length=_max_length(Question, "title"),
        help_text="One line, e.g. “Itchy rash on both forearms for a week”.",
        error_messages={"required": "Give your question a short title."},
    )
    description = TextField(
        max_length=_max_length(Question, "description"),
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="What happened, since when, what makes it better or worse, and what you want to know.",
        error_messages={"required": "Describe your symptoms or your question."},
    )


class AskForm(QuestionDraftForm):
    age = forms.IntegerField(
        min_value=0,
        max_value=120,
        error_messages={
            "required": "Enter the age of the person the question is about.",
            "invalid": "Enter the age as a whole number of years, e.g. 34.",
            "min_value": "Age cannot be below 0.",
            "max_value": "Age must be 120 or below.",
        },
        help_text="Of the person the question is about, in years (0 for a baby under one).",
    )
    sex = forms.ChoiceField(
        choices=[("", "Choose…"), *Sex.choices],
        error_messages={"required": "Choose the sex of the person the question is about."},
    )
    medical_history = TextField(
        label="Medical history (optional)",
        required=False,
        max_length=_max_length(Question, "medical_history"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Long-term conditions, operations, allergies, pregnancy.",
    )
    current_medication = TextField(
        label="Current medication (optional)",
        required=False,
        max_length=_max_length(Question, "current_medication"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Names and doses, including the contraceptive pill and supplements.",
    )
    attachments = AttachmentsField(
        label="Photos or documents (optional)",
        widget=MultipleFileInput(attrs={"accept": ATTACHMENT_ACCEPT}),
    )
    consent = forms.BooleanField(
        label="I agree to the terms",
        help_text="Your question and attachments are shared only with verified doctors of the chosen specialty.",
        error_messages={"required": "You need to agree to the terms before sending your question."},
    )

    # One submission, one question: a fresh token per form shown, sent back hidden.
    # Every post of this page (double click, replay, retry) carries the same one.
    submission_token = forms.UUIDField(widget=PlainHiddenInput)

    QUESTION_FIELDS = ("specialty", "title", "description", "age", "sex", "medical_history", "current_medication")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._ensure_submission_token()
        self.fields["consent"].label = legal_links_label("I have read and agree to the")
        self.fields["attachments"].help_text = attachments_help_text()

    @property
    def files_were_sent(self) -> bool:
        """True when the patient attached files that this redisplay cannot keep."""
        return self.is_bound and bool(self.files.getlist(self.add_prefix("attachments")))

    def question_fields(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.QUESTION_FIELDS}

    def _ensure_submission_token(self):
        """A new form gets a fresh token. A post without a usable one (a page opened
        before tokens existed, a hand-made request) is given one rather than refused
        with an error the patient could not fix; only copies of that one post then
        go unrecognised, and its redisplay carries the new token."""
        name = self.add_prefix("submission_token")
        if not self.is_bound:
            self.initial.setdefault("submission_token", uuid.uuid4())
            return
        try:
            uuid.UUID(str(self.data.get(name, "")))
        except ValueError:
            self.data = self.data.copy()
            self.data[name] = str(uuid.uuid4())


class FollowUpForm(forms.Form):
    """A patient's message in the thread (a follow-up, or the reply to a doctor's request
    for information), with files checked exactly as on the ask form."""

    body = TextField(
        label="Your message",
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"required": "Write your message before sending it."},
    )
    attachments = AttachmentsField(
        label="Photos or documents (optional)",
        widget=MultipleFileInput(attrs={"accept": ATTACHMENT_ACCEPT}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["attachments"].help_text = attachments_help_text()

    @property
    def files_were_sent(self) -> bool:
        """True when the patient attached files that this redisplay cannot keep."""
        return self.is_bound and bool(self.files.getlist(self.add_prefix("attachments")))


class RatingForm(forms.Form):
    rating = forms.TypedChoiceField(
        label="How helpful was the answer?",
        coerce=int,
        choices=[(5, "5 – very helpful"), (4, "4"), (3, "3"), (2, "2"), (1, "1 – not helpful")],
        widget=forms.RadioSelect,
        error_messages={"required": "Choose a rating from 1 to 5."},
    )
    comment = TextField(
        label="Comment (optional)",
        required=False,
        max_length=_max_length(Question, "rating_comment"),
        widget=forms.Textarea(attrs={"rows": 2}),
    )
