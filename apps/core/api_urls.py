"""The API's own routes (mounted under /api/ by pressluft/urls.py): the
metrics, the panel's settings and the API's description. apps/core/urls.py holds the panel's pages
outside /api/."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from apps.core.api import MetricsView, PanelSettingsView

urlpatterns = [
    path("metrics", MetricsView.as_view(), name="metrics"),
    path("settings", PanelSettingsView.as_view(), name="settings"),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
]
