from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from apps.core.views import dashboard, healthz, metrics

api_v1 = [
    path("", include("apps.core.api_urls")),
    path("", include("apps.accounts.api_urls")),
    path("", include("apps.datasets.api_urls")),
    path("", include("apps.training.api_urls")),
    path("", include("apps.evaluation.api_urls")),
    path("", include("apps.providers.api_urls")),
    path("", include("apps.hub.api_urls")),
    path("", include("apps.rl.api_urls")),
    path("", include("apps.prompts.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
]

urlpatterns = [
    path("", dashboard, name="dashboard"),
    path("accounts/", include("apps.accounts.urls")),
    path("jobs/", include("apps.core.urls")),
    path("datasets/", include("apps.datasets.urls")),
    path("training/", include("apps.training.urls")),
    path("benchmarks/", include("apps.evaluation.urls")),
    path("providers/", include("apps.providers.urls")),
    path("hub/", include("apps.hub.urls")),
    path("rl/", include("apps.rl.urls")),
    path("prompts/", include("apps.prompts.urls")),
    path("api/v1/", include(api_v1)),
    path("playground/", include("apps.playground.urls")),
    path("v1/", include("apps.playground.api_urls")),  # OpenAI-compatible: clients append /chat/completions to a base URL
    path("admin/", admin.site.urls),
    # Without a trailing slash, where load balancers and Prometheus look by default.
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    # Browsers and feed readers ask for /favicon.ico whatever the page links to.
    path("favicon.ico", RedirectView.as_view(url=static("garage/favicon.ico"), permanent=True)),
]
