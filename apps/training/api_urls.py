from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.training.api import CatalogueView, FineTuneViewSet, PipelineView

router = SimpleRouter()
router.register("finetunes", FineTuneViewSet, basename="finetune")
urlpatterns = [path("pipelines/", PipelineView.as_view(), name="pipeline-create"),
               path("catalogue/", CatalogueView.as_view(), name="catalogue"), *router.urls]
