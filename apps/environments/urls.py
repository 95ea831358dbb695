"""API routes of environments (mounted under /api/ by pressluft/urls.py),
with a site's environment list. An environment's backups and domains are
routed by apps/backups/urls.py and apps/domains/urls.py."""

from django.urls import path

from apps.environments.api import (
    EnvironmentCachePurgeView,
    EnvironmentCacheView,
    EnvironmentDeployArchiveView,
    EnvironmentDeployView,
    EnvironmentDetailView,
    EnvironmentDriftCheckView,
    EnvironmentGitRepositoryView,
    EnvironmentHealthCheckView,
    EnvironmentHeldMailView,
    EnvironmentMagicLoginView,
    EnvironmentOutgoingAllowListView,
    EnvironmentOutgoingRequestsView,
    EnvironmentResetView,
    EnvironmentRollbackView,
    EnvironmentRunScheduledView,
    EnvironmentStagingHoldsView,
    EnvironmentUpdatesView,
    SiteEnvironmentListView,
)

urlpatterns = [
    path("sites/<uuid:id>/environments", SiteEnvironmentListView.as_view(), name="site-environments"),
    path("environments/<uuid:id>", EnvironmentDetailView.as_view(), name="environment-detail"),
    path("environments/<uuid:id>/reset", EnvironmentResetView.as_view(), name="environment-reset"),
    path("environments/<uuid:id>/magic-login", EnvironmentMagicLoginView.as_view(), name="environment-magic-login"),
    path("environments/<uuid:id>/deploy", EnvironmentDeployView.as_view(), name="environment-deploy"),
    path("environments/<uuid:id>/rollback", EnvironmentRollbackView.as_view(), name="environment-rollback"),
    path("environments/<uuid:id>/deploy-archives", EnvironmentDeployArchiveView.as_view(),
         name="environment-deploy-archives"),
    path("environments/<uuid:id>/git-repository", EnvironmentGitRepositoryView.as_view(),
         name="environment-git-repository"),
    path("environments/<uuid:id>/held-mail", EnvironmentHeldMailView.as_view(), name="environment-held-mail"),
    path("environments/<uuid:id>/cache", EnvironmentCacheView.as_view(), name="environment-cache"),
    path("environments/<uuid:id>/cache/purge", EnvironmentCachePurgeView.as_view(), name="environment-cache-purge"),
    path("environments/<uuid:id>/staging-holds", EnvironmentStagingHoldsView.as_view(), name="environment-staging-holds"),
    path("environments/<uuid:id>/outgoing-requests", EnvironmentOutgoingRequestsView.as_view(),
         name="environment-outgoing-requests"),
    path("environments/<uuid:id>/outgoing-allow-list", EnvironmentOutgoingAllowListView.as_view(),
         name="environment-outgoing-allow-list"),
    path("environments/<uuid:id>/run-scheduled", EnvironmentRunScheduledView.as_view(),
         name="environment-run-scheduled"),
    path("environments/<uuid:id>/health-check", EnvironmentHealthCheckView.as_view(),
         name="environment-health-check"),
    path("environments/<uuid:id>/drift-check", EnvironmentDriftCheckView.as_view(), name="environment-drift-check"),
    path("environments/<uuid:id>/updates", EnvironmentUpdatesView.as_view(), name="environment-updates"),
]
