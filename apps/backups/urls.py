"""API routes of backups (mounted under /api/ by pressluft/urls.py)."""

from django.urls import path

from apps.backups.api import BackupRestoreAsCloneView, EnvironmentBackupListView, EnvironmentRestoreView

urlpatterns = [
    path("environments/<uuid:id>/backups", EnvironmentBackupListView.as_view(), name="environment-backups"),
    path("environments/<uuid:id>/restore", EnvironmentRestoreView.as_view(), name="environment-restore"),
    path("backups/<uuid:id>/restore-as-clone", BackupRestoreAsCloneView.as_view(), name="backup-restore-as-clone"),
]
