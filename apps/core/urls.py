from django.urls import path

from apps.core import views

app_name = "jobs"
urlpatterns = [
    path("", views.job_list, name="list"),
    path("<uuid:code>/", views.job_detail, name="detail"),
    path("<uuid:code>/cancel/", views.job_cancel_view, name="cancel"),
    path("<uuid:code>/retry/", views.job_retry_view, name="retry"),
]
