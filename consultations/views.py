"""Patients' pages (foundation stubs, replaced by the patient pages work)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render

from consultations.models import Question


@login_required
def my_questions(request):
    questions = Question.objects.visible_to_patient(request.user).select_related("specialty")
    return render(request, "consultations/my_questions.html", {"questions": questions})


@login_required
def ask(request):
    return render(request, "consultations/ask.html", {})


@login_required
def question_detail(request, pk):
    question = get_object_or_404(Question.objects.visible_to_patient(request.user), pk=pk)
    return render(request, "consultations/question_detail.html", {"question": question})
