from rest_framework.routers import SimpleRouter

from apps.datasets.api import DatasetVersionViewSet, DatasetViewSet, DocumentViewSet, QAPairViewSet

router = SimpleRouter()
router.register("datasets", DatasetViewSet, basename="dataset")
router.register(r"datasets/(?P<dataset_code>[0-9a-fA-F-]{36})/pairs", QAPairViewSet, basename="dataset-pair")
router.register("versions", DatasetVersionViewSet, basename="dataset-version")
router.register("documents", DocumentViewSet, basename="document")
urlpatterns = router.urls
