"""Public forms: the article search / filters and the newsletter sign-up."""

from django import forms

from articles.newsletter import normalize_email

MAX_QUERY_LENGTH = 100


class SearchForm(forms.Form):
    q = forms.CharField(label="Search articles", required=False, strip=True)
    specialty = forms.SlugField(required=False)
    tag = forms.SlugField(required=False)
    page = forms.IntegerField(required=False, min_value=1, max_value=10_000)

    def clean_q(self):
        # A pasted paragraph is shortened rather than refused.
        return " ".join(self.cleaned_data["q"].split())[:MAX_QUERY_LENGTH]


class NewsletterForm(forms.Form):
    email = forms.EmailField(
        label="Your e-mail address",
        max_length=254,
        error_messages={
            "required": "Please enter your e-mail address.",
            "invalid": "This does not look like an e-mail address. Please check it (for example name@example.com).",
        },
        widget=forms.EmailInput(attrs={"autocomplete": "email", "placeholder": "name@example.com"}),
    )
    consent = forms.BooleanField(
        # The template shows this label with links to the terms and privacy policy.
        label="I agree to the terms of use and the privacy policy, and to receive the newsletter by e-mail.",
        error_messages={"required": "Please tick the box to agree to the terms and privacy policy."},
    )
    next = forms.CharField(required=False, widget=forms.HiddenInput, max_length=500)

    def clean_email(self):
        try:
            return normalize_email(self.cleaned_data["email"])
        except forms.ValidationError:
            raise forms.ValidationError(self.fields["email"].error_messages["invalid"], code="invalid")
