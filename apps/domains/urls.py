"""API routes of domains (mounted under /api/ by pressluft/urls.py)."""

from django.urls import path

from apps.domains.api import EnvironmentDomainListView

urlpatterns = [
    path("environments/<uuid:id>/domains", EnvironmentDomainListView.as_view(), name="environment-domains"),
]
