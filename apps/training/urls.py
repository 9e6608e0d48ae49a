from django.urls import path

from apps.training import views

app_name = "training"
urlpatterns = [
    path("", views.finetune_list, name="list"),
    path("pipeline/", views.pipeline_create, name="pipeline"),
    path("<uuid:code>/", views.finetune_detail, name="detail"),
    path("<uuid:code>/rename/", views.finetune_rename_view, name="rename"),
    path("<uuid:code>/lineage/", views.finetune_lineage_view, name="lineage"),
    path("examples/<uuid:code>/<int:position>/", views.example_lineage_view, name="example-lineage"),
    path("<uuid:code>/download/", views.finetune_download, name="download"),
    path("<uuid:code>/exports/", views.finetune_export, name="export"),
    path("<uuid:code>/outputs/<slug:name>/download/", views.finetune_output_download, name="output-download"),
]
