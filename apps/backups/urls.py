"""API routes of backups (mounted under /api/ by pressluft/urls.py)."""

from django.urls import path

from apps.backups.api import (
    BackupDetailView,
    BackupListView,
    BackupRestoreAsCloneView,
    EnvironmentBackupListView,
    EnvironmentBackupScheduleView,
    EnvironmentRestoreView,
)

urlpatterns = [
    path("environments/<uuid:id>/backups", EnvironmentBackupListView.as_view(), name="environment-backups"),
    path("environments/<uuid:id>/backup-schedule", EnvironmentBackupScheduleView.as_view(),
         name="environment-backup-schedule"),
    path("environments/<uuid:id>/restore", EnvironmentRestoreView.as_view(), name="environment-restore"),
    path("backups", BackupListView.as_view(), name="backups"),
    path("backups/<uuid:id>", BackupDetailView.as_view(), name="backup"),
    path("backups/<uuid:id>/restore-as-clone", BackupRestoreAsCloneView.as_view(), name="backup-restore-as-clone"),
]
