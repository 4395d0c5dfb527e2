"""Patients' question pages, and the attachment download, picture and thumbnail shared with doctors and staff."""

from django.urls import path

from consultations import views

app_name = "consultations"

urlpatterns = [
    path("", views.my_questions, name="my_questions"),
    path("ask/", views.ask, name="ask"),
    path("<int:pk>/", views.question_detail, name="question_detail"),
    path("<int:pk>/submitted/", views.question_submitted, name="question_submitted"),
    path("<int:pk>/follow-up/", views.follow_up, name="follow_up"),
    path("<int:pk>/rate/", views.rate, name="rate"),
    path("<int:pk>/close/", views.close, name="close"),
    path("attachments/<int:pk>/", views.attachment_download, name="attachment"),
    path("attachments/<int:pk>/picture/", views.attachment_picture, name="attachment_picture"),
    path("attachments/<int:pk>/thumbnail/", views.attachment_thumbnail, name="attachment_thumbnail"),
]
