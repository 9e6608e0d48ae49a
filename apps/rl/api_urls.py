from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.rl.api import GrpoRunViewSet, RewardLibraryView, RewardPreviewViewSet

router = SimpleRouter()
router.register("grpo-runs", GrpoRunViewSet, basename="grpo-run")
router.register("reward-previews", RewardPreviewViewSet, basename="reward-preview")
urlpatterns = [path("reward-functions/", RewardLibraryView.as_view(), name="reward-functions"), *router.urls]
