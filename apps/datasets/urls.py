from django.urls import path

from apps.datasets import views

app_name = "datasets"
urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("<uuid:code>/", views.dataset_detail, name="detail"),
    path("<uuid:code>/upload/", views.document_upload_view, name="upload"),
    path("<uuid:code>/generate/", views.generate_view, name="generate"),
    path("<uuid:code>/train/", views.train_view, name="train"),
]
