from rest_framework.routers import SimpleRouter

from apps.evaluation.api import BenchmarkRunViewSet

router = SimpleRouter()
router.register("benchmarks", BenchmarkRunViewSet, basename="benchmark")
urlpatterns = router.urls
