from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.accounts.api import ApiTokenViewSet, MeView

router = SimpleRouter()
router.register("tokens", ApiTokenViewSet, basename="api-token")
urlpatterns = [path("me/", MeView.as_view(), name="api-me"), *router.urls]
