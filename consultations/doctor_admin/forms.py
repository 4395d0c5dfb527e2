"""The question page's forms: a doctor's reply and a clinical staff member's reassignment."""

from django import forms

from consultations import services
from consultations.models import DoctorProfile

# --- Forms ------------------------------------------------------------------------


class ReplyForm(forms.Form):
    INTENTS = [("answer", "Send answer"), ("info", "Ask for more information")]

    body = forms.CharField(
        label="Your reply to the patient",
        max_length=10000,
        widget=forms.Textarea(attrs={"rows": 12, "class": "workbench-reply"}),
        error_messages={"required": "Write your reply before sending it."},
    )
    intent = forms.ChoiceField(
        choices=INTENTS,
        widget=forms.HiddenInput,
        error_messages={"required": "Choose “Send answer” or “Ask for more information”."},
    )


class DoctorChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        specialties = ", ".join(s.name for s in obj.specialties.all())
        return f"{obj.display_name} ({specialties})" if specialties else obj.display_name


class ReassignForm(forms.Form):
    """Staff hand open questions to a verified doctor of their specialty, whoever holds them now.

    Only doctors of every selected question's specialty are offered; the service
    checks again (consultations.services.reassign_question).
    """

    doctor = DoctorChoiceField(
        queryset=DoctorProfile.objects.none(),
        label="Hand this question to",
        empty_label="Choose a doctor",
        error_messages={
            "required": "Choose the doctor who should answer.",
            "invalid_choice": "Choose a verified doctor of the question's specialty.",
        },
    )

    def __init__(self, *args, specialty_ids=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["doctor"].queryset = (
            services.eligible_doctors(specialty_ids).prefetch_related("specialties").order_by("display_name")
        )
