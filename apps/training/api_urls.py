from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.training.api import CatalogueView, FineTuneViewSet, PipelineView, PlanView

router = SimpleRouter()
router.register("finetunes", FineTuneViewSet, basename="finetune")
urlpatterns = [path("pipelines/", PipelineView.as_view(), name="pipeline-create"),
               path("catalogue/", CatalogueView.as_view(), name="catalogue"),
               path("plan/", PlanView.as_view(), name="training-plan"), *router.urls]
