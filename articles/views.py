"""Public pages: home, articles, doctor profiles. (Foundation stubs; see issue 5.)"""

from django.shortcuts import get_object_or_404, render

from consultations.models import DoctorProfile, Specialty


def home(request):
    return render(request, "articles/home.html", {"specialties": Specialty.objects.all()})


def doctor_profile(request, slug):
    doctor = get_object_or_404(DoctorProfile.objects.verified().prefetch_related("specialties"), slug=slug)
    return render(request, "articles/doctor_profile.html", {"doctor": doctor})
