from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.hub.api import ConnectionTokenView, ConnectionView, GateView, PreferencesView, PushViewSet, RepoListView

router = SimpleRouter()
router.register("hub/pushes", PushViewSet, basename="hub-push")
urlpatterns = [
    path("hub/connection/", ConnectionView.as_view(), name="hub-connection"),
    path("hub/connection/token/", ConnectionTokenView.as_view(), name="hub-connection-token"),
    path("hub/repos/", RepoListView.as_view(), name="hub-repos"),
    path("hub/preferences/", PreferencesView.as_view(), name="hub-preferences"),
    path("hub/gate/<uuid:code>/", GateView.as_view(), name="hub-gate"),
    *router.urls,
]
