from rest_framework.routers import SimpleRouter

from apps.prompts.api import OptimizedPromptViewSet, SavedPromptViewSet

router = SimpleRouter()
router.register("prompt-optimizations", OptimizedPromptViewSet, basename="prompt-optimization")
router.register("saved-prompts", SavedPromptViewSet, basename="saved-prompt")
urlpatterns = router.urls
