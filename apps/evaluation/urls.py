from django.urls import path

from apps.evaluation import views
from apps.evaluation.heldout import views as heldout_views

app_name = "evaluation"
urlpatterns = [
    path("", views.run_list, name="list"),
    path("new/", views.run_create, name="create"),
    path("compare/", views.compare, name="compare"),
    path("<uuid:code>/", views.run_detail, name="detail"),
    path("<uuid:code>/items.jsonl", views.run_items_download, name="items-download"),
    path("heldout/<uuid:code>/", heldout_views.heldout_detail, name="heldout"),
    path("heldout/models/<uuid:code>/run/", heldout_views.heldout_start, name="heldout-start"),
]
