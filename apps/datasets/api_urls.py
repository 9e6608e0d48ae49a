from rest_framework.routers import SimpleRouter

from apps.datasets.api import DatasetViewSet

router = SimpleRouter()
router.register("datasets", DatasetViewSet, basename="dataset")
urlpatterns = router.urls
