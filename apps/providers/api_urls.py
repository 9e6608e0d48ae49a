from rest_framework.routers import SimpleRouter

from apps.providers.api import (
    ExternalCallAuditViewSet,
    PiiPatternViewSet,
    ProviderCredentialViewSet,
)

router = SimpleRouter()
router.register("providers", ProviderCredentialViewSet, basename="provider")
router.register("pii-patterns", PiiPatternViewSet, basename="pii-pattern")
router.register("audit", ExternalCallAuditViewSet, basename="external-call")
urlpatterns = router.urls
