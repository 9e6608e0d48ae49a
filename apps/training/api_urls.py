from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.training.api import FineTuneViewSet, PipelineView

router = SimpleRouter()
router.register("finetunes", FineTuneViewSet, basename="finetune")
urlpatterns = [path("pipelines/", PipelineView.as_view(), name="pipeline-create"), *router.urls]
