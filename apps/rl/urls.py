from django.urls import path

from apps.rl import views

app_name = "rl"
urlpatterns = [
    path("", views.run_list, name="list"),
    path("new/", views.run_create, name="create"),
    path("recipe/", views.recipe, name="recipe"),
    path("previews/", views.preview_create, name="preview-create"),
    path("previews/<uuid:code>/", views.preview_detail, name="preview"),
    path("<uuid:code>/", views.run_detail, name="detail"),
    path("<uuid:code>/download/", views.run_download, name="download"),
]
