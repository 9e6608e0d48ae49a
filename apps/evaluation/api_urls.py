from rest_framework.routers import SimpleRouter

from apps.evaluation.api import BenchmarkRunViewSet
from apps.evaluation.heldout.api import HeldoutEvaluationViewSet

router = SimpleRouter()
router.register("benchmarks", BenchmarkRunViewSet, basename="benchmark")
router.register("heldout-evaluations", HeldoutEvaluationViewSet, basename="heldout-evaluation")
urlpatterns = router.urls
