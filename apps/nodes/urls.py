"""API routes of nodes (mounted under /api/ by pressluft/urls.py)."""

from django.urls import path

from apps.nodes.api import NodeDetailView, NodeHealthView, NodeListView, NodeProvisionView, PanelPublicKeyView

urlpatterns = [
    path("nodes", NodeListView.as_view(), name="node-list"),
    path("nodes/public-key", PanelPublicKeyView.as_view(), name="node-public-key"),
    path("nodes/<uuid:id>", NodeDetailView.as_view(), name="node-detail"),
    path("nodes/<uuid:id>/provision", NodeProvisionView.as_view(), name="node-provision"),
    path("nodes/<uuid:id>/health", NodeHealthView.as_view(), name="node-health"),
]
