"""API routes of sites (mounted under /api/ by pressluft/urls.py)."""

from django.urls import path

from apps.sites.api import SiteDetailView, SiteListView, SiteResetView

urlpatterns = [
    path("sites", SiteListView.as_view(), name="site-list"),
    path("sites/<uuid:id>", SiteDetailView.as_view(), name="site-detail"),
    path("sites/<uuid:id>/reset", SiteResetView.as_view(), name="site-reset"),
]
