from rest_framework.routers import SimpleRouter

from apps.core.api import JobViewSet

router = SimpleRouter()
router.register("jobs", JobViewSet, basename="job")
urlpatterns = router.urls
