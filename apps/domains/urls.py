"""API routes of domains (mounted under /api/ by pressluft/urls.py)."""

from django.urls import path

from apps.domains.api import DomainDetailView, EnvironmentDomainListView

urlpatterns = [
    path("environments/<uuid:id>/domains", EnvironmentDomainListView.as_view(), name="environment-domains"),
    path("domains/<uuid:id>", DomainDetailView.as_view(), name="domain-detail"),
]
