from django.urls import path

from apps.training import views

app_name = "training"
urlpatterns = [
    path("", views.finetune_list, name="list"),
    path("pipeline/", views.pipeline_create, name="pipeline"),
    path("<uuid:code>/", views.finetune_detail, name="detail"),
    path("<uuid:code>/download/", views.finetune_download, name="download"),
]
