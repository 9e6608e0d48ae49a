from django.urls import path

from apps.prompts import views

app_name = "prompts"
urlpatterns = [
    path("", views.run_list, name="list"),
    path("new/", views.run_create, name="create"),
    path("saved/", views.saved_list, name="saved"),
    path("saved/<uuid:code>/", views.saved_detail, name="saved-detail"),
    path("saved/<uuid:code>/delete/", views.saved_delete, name="saved-delete"),
    path("<uuid:code>/", views.run_detail, name="detail"),
    path("<uuid:code>/save/", views.run_save, name="save"),
]
