from django.urls import path

from apps.providers import views

app_name = "providers"
urlpatterns = [
    path("", views.provider_list, name="list"),
    path("<uuid:code>/delete/", views.provider_delete, name="delete"),
    path("<uuid:code>/test/", views.provider_test, name="test"),
    path("patterns/", views.pattern_create, name="pattern_create"),
    path("patterns/<uuid:code>/delete/", views.pattern_delete, name="pattern_delete"),
    path("audit/", views.audit_list, name="audit"),
]
