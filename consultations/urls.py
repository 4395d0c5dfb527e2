from django.urls import path

from consultations import views

app_name = "consultations"

urlpatterns = [
    path("", views.my_questions, name="my_questions"),
    path("ask/", views.ask, name="ask"),
    path("<int:pk>/", views.question_detail, name="question_detail"),
]
