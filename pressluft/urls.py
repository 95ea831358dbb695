from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from apps.accounts.api import LoginView, LogoutView
from apps.core.api import MetricsView
from apps.environments.api import (
    EnvironmentBackupListView,
    EnvironmentDetailView,
    EnvironmentDeployArchiveView,
    EnvironmentDeployView,
    EnvironmentGitRepositoryView,
    EnvironmentHeldMailView,
    EnvironmentDomainListView,
    EnvironmentHealthCheckView,
    EnvironmentMagicLoginView,
    EnvironmentResetView,
    EnvironmentRollbackView,
    SiteEnvironmentListView,
)
from apps.jobs.api import JobCancelView, JobDetailView, JobListView, JobLogView, JobRetryView
from apps.nodes.api import NodeDetailView, NodeHealthView, NodeListView, NodeProvisionView, PanelPublicKeyView
from apps.sites.api import SiteDetailView, SiteListView, SiteResetView

api_patterns = [
    path("login", LoginView.as_view(), name="login"),
    path("logout", LogoutView.as_view(), name="logout"),
    path("sites", SiteListView.as_view(), name="site-list"),
    path("sites/<uuid:id>", SiteDetailView.as_view(), name="site-detail"),
    path("sites/<uuid:id>/environments", SiteEnvironmentListView.as_view(), name="site-environments"),
    path("sites/<uuid:id>/reset", SiteResetView.as_view(), name="site-reset"),
    path("environments/<uuid:id>", EnvironmentDetailView.as_view(), name="environment-detail"),
    path("environments/<uuid:id>/reset", EnvironmentResetView.as_view(), name="environment-reset"),
    path("environments/<uuid:id>/backups", EnvironmentBackupListView.as_view(), name="environment-backups"),
    path("environments/<uuid:id>/domains", EnvironmentDomainListView.as_view(), name="environment-domains"),
    path("environments/<uuid:id>/magic-login", EnvironmentMagicLoginView.as_view(), name="environment-magic-login"),
    path("environments/<uuid:id>/deploy", EnvironmentDeployView.as_view(), name="environment-deploy"),
    path("environments/<uuid:id>/rollback", EnvironmentRollbackView.as_view(), name="environment-rollback"),
    path("environments/<uuid:id>/deploy-archives", EnvironmentDeployArchiveView.as_view(), name="environment-deploy-archives"),
    path("environments/<uuid:id>/git-repository", EnvironmentGitRepositoryView.as_view(), name="environment-git-repository"),
    path("environments/<uuid:id>/held-mail", EnvironmentHeldMailView.as_view(), name="environment-held-mail"),
    path("environments/<uuid:id>/health-check", EnvironmentHealthCheckView.as_view(), name="environment-health-check"),
    path("jobs", JobListView.as_view(), name="job-list"),
    path("jobs/<uuid:id>", JobDetailView.as_view(), name="job-detail"),
    path("jobs/<uuid:id>/cancel", JobCancelView.as_view(), name="job-cancel"),
    path("jobs/<uuid:id>/log", JobLogView.as_view(), name="job-log"),
    path("jobs/<uuid:id>/retry", JobRetryView.as_view(), name="job-retry"),
    path("nodes", NodeListView.as_view(), name="node-list"),
    path("nodes/public-key", PanelPublicKeyView.as_view(), name="node-public-key"),
    path("nodes/<uuid:id>", NodeDetailView.as_view(), name="node-detail"),
    path("nodes/<uuid:id>/provision", NodeProvisionView.as_view(), name="node-provision"),
    path("nodes/<uuid:id>/health", NodeHealthView.as_view(), name="node-health"),
    path("metrics", MetricsView.as_view(), name="metrics"),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
]

urlpatterns = [
    path("api/", include(api_patterns)),
    path("admin/", admin.site.urls),
    path("", include("apps.core.urls")),
]

handler404 = "apps.core.views.not_found"
handler500 = "apps.core.views.internal_error"
